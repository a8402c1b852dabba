"""Reading a built dataset folder: the reader, validation and statistics.

The reader's public names are re-exported here (``from voxbox.dataset import open_dataset``).
"""

from voxbox.dataset.reader import (BuiltDataset, decode_audio, hf_record_features,  # noqa: F401
                                   hf_webdataset_features, open_dataset)
