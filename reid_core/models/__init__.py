"""Network definitions and trained-model files, below both embedding and training in the import graph.

This package must not import reid_core.training, reid_core.embedding, ingest, store or matching.

- network.py: `build_network(arch, num_classes)` -> ReIDNetwork (osnet_x0_25, bot_r50), one train/eval contract
- checkpoints.py: FastReID, LUPerson MoCo / torchvision and torchreid checkpoints into those networks, with a report
- files.py: the trained-model file format, save/load, and lookup by name in the weights folders

Names are imported on first use (PEP 562), so a name lookup (`find_trained`, `list_trained`) does not pay for
importing torch: the CLI and the OpenVINO-only paths stay quick to start.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "checkpoints": ("LoadReport", "load_fastreid_checkpoint", "load_luperson_moco", "load_torchreid_osnet",
                    "read_checkpoint"),
    "files": ("MODEL_FORMAT", "default_output_dir", "find_trained", "list_trained", "load_model", "read_model_file",
              "save_model", "trained_path", "validate_name"),
    "network": ("ARCHS", "INPUT_MEAN", "INPUT_STD", "BoTResNet50", "GeM", "NetOutput", "OSNetReID", "ReIDNetwork",
                "build_network"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
