"""The journal beside the HDF5 file: SQLite (the only place with SQL), its
sidecar folder and locks, and the mutation log as replayable lines."""
