"""The daemon's processes: `ilyd run` as one process (`process.Daemon`), or a front
(`front.Front`: control socket, metrics, systemd) over worker processes (`worker`,
`shards`; a daemon alone or as a worker is its `placement`), and what both share: the
service loop and reload (`service`), systemd's notify protocol (`sdnotify`), the metrics
endpoint (`metrics_server`, `merged_metrics`) and logging (`logs`)."""
