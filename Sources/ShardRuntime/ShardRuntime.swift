// The ShardRuntime module.
