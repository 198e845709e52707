// The MQTTRouter module: one shard's routing state, pure (no I/O, no Foundation, no clock, no threads).
//
// Data structures, each in its own file:
//
//   ShardID, ShardSet, StableHash   shard identity, 256-shard bitset, stable FNV-1a homing
//   TopicTrie                       slab-backed trie over topic levels, shared by the three below
//   SubscriptionTrie                this shard's filters -> subscribers (ordinary and shared groups)
//   LocalInterest, InterestTable    this shard's refcounts, and the replica of every shard's interest
//   RetainedStore                   retained messages of the topics homed on this shard
//   PacketIdentifierAllocator       identifiers for a session's outgoing QoS 1/2 publishes
