"""Object stores: where artifact files live (the local filesystem, S3), listed, copied, verified and deleted by
prefix (``base``: the ``Store`` interface and the prefix operations; ``local``, ``s3``: the stores;
``locate``: an artifact URI resolved into a store and a prefix).

May import ``common`` and ``db`` (it needs neither database nor findings).  Knows nothing of Moves or MLflow
rows: ``engine`` decides which prefix goes where, and ``usecases`` may reuse it for any copy between stores.
"""
