"""Large pools: shards on disk, the Dask engine, sharded k-means and streamed inference."""
