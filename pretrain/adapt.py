"""Site adaptation without labels, the same as `reid adapt`, runnable under torchrun for DDP:

    torchrun --nproc_per_node 2 pretrain/adapt.py --store gallery --name site1
"""
from reid_core.cli.common import run_command
from reid_core.cli.train import adapt_cmd

if __name__ == "__main__":
    run_command(adapt_cmd)
