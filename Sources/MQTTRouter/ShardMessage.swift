import MQTTCodec

// MARK: - Messages between shards

/// Everything one shard's router says to another over the SPSC mesh. Messages from one shard to another arrive
/// in the order they were sent (one ring per ordered pair of shards); the router relies on that for interest
/// deltas and their acknowledgements.
public enum ShardMessage: Sendable {
    /// A change in the sender's interest (filter 0→1 / 1→0, or shared-group member counts). A non-zero
    /// `requestID` asks for an ``interestAcknowledged(requestID:)`` reply: a SUBACK waits for it.
    case interest(InterestDelta, requestID: UInt64)
    /// The receiver applied the delta with this request identifier to its replica.
    case interestAcknowledged(requestID: UInt64)
    /// A message for the receiver's own matching (ordinary) subscriptions.
    case publish(SharedPublish)
    /// A message for one member, on the receiver, of the shared group `group` (`$share/{name}/{filter}`).
    case sharedPublish(SharedPublish, group: TopicFilter)
    /// Retain (or, with an empty payload, clear) the message on the receiver, the topic's home shard.
    case retain(SharedPublish)
    /// Asks for the retained messages on the receiver matching `filter`; answered by ``retainedReply(requestID:messages:)``.
    case retainedRequest(filter: TopicFilter, requestID: UInt64)
    /// Retained messages answering ``retainedRequest(filter:requestID:)``.
    case retainedReply(requestID: UInt64, messages: [SharedPublish])
    /// The sender's queued-bytes budget was reached (`true`) or it drained below three quarters of it (`false`):
    /// while any shard is under pressure, every shard stops reading its publishers (Router+SlowConsumers.swift).
    case pressure(Bool)
}

extension ShardMessage {
    /// Whether the message must reach its destination (control traffic is retried when the mesh refuses it;
    /// QoS 0 publish forwards are dropped instead).
    var mustArrive: Bool {
        switch self {
        case .publish(let message), .sharedPublish(let message, _): message.qos != .atMostOnce
        default: true
        }
    }
}
