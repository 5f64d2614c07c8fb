"""MoCo v2 pretraining, the same as `reid train moco`, runnable under torchrun for DDP:

    torchrun --nproc_per_node 2 pretrain/moco.py --store gallery --name site1-moco --epochs 20
"""
from reid_core.cli.common import run_command
from reid_core.cli.train import moco_cmd

if __name__ == "__main__":
    run_command(moco_cmd)
