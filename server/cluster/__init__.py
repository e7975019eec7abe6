"""Several server nodes serving one set of domains: a directory and node-to-node channel on Redis,
storage shared on PostgreSQL (issue 13). Absent `[cluster]`, none of this is imported."""
