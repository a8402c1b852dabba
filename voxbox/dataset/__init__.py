"""Reading a built dataset folder: the reader, validation, statistics and the training readers.

The public names are re-exported here (``from voxbox.dataset import open_dataset``):
:func:`open_dataset` (every later command reads through it), :func:`hf_dataset` (a
``datasets.Dataset`` whose audio decodes with soundfile) and :func:`torch_dataset` (the
WebDataset shards streamed into a torch ``DataLoader``).
"""

from voxbox.dataset.reader import (BuiltDataset, decode_audio, hf_record_features,  # noqa: F401
                                   hf_webdataset_features, hub_split, open_dataset)


def hf_dataset(*args, **kwargs):
    """See :func:`voxbox.dataset.hf.hf_dataset` (imported on first use: ``datasets`` is heavy)."""
    from voxbox.dataset.hf import hf_dataset as run

    return run(*args, **kwargs)


def torch_dataset(*args, **kwargs):
    """See :func:`voxbox.dataset.torchdata.torch_dataset` (imported on first use: torch is heavy)."""
    from voxbox.dataset.torchdata import torch_dataset as run

    return run(*args, **kwargs)


def collate(samples):
    """See :func:`voxbox.dataset.torchdata.collate`."""
    from voxbox.dataset.torchdata import collate as run

    return run(samples)
