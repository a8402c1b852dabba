"""Remote storage. :mod:`voxbox.storage.output`: a build's output in object storage
(``voxbox build --out s3://bucket/prefix``)."""
