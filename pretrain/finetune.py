"""Supervised fine-tuning, the same as `reid train supervised`, runnable under torchrun for DDP:

    torchrun --nproc_per_node 2 pretrain/finetune.py --market /data/Market-1501 --name market-bot --arch bot_r50
"""
from reid_core.cli.common import run_command
from reid_core.cli.train import supervised_cmd

if __name__ == "__main__":
    run_command(supervised_cmd)
