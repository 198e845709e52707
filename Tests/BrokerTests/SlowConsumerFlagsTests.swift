// The command-line flags of the slow-consumer bounds: each sets its Limits field; a bad value names the flag.
import MQTTRouter
import Testing

@testable import Broker

@Suite struct SlowConsumerFlagsTests {
    func limits(_ arguments: [String]) throws -> Limits {
        guard case .run(let configuration) = try parseCommandLine(arguments) else {
            Issue.record("not a run request")
            return Limits()
        }
        return configuration.limits
    }

    @Test func everyBoundHasAFlag() throws {
        // Proves each slow-consumer bound is configurable from the command line and lands in Limits.
        let limits = try limits([
            "--queue-full-disconnect", "30", "--queued-bytes-budget", "1048576", "--mesh-ring-slots", "1024",
            "--mesh-overflow", "500", "--max-connections-per-shard", "77", "--queue-policy", "drop_oldest",
            "--max-queued-messages", "12", "--max-queued-bytes", "65536", "--max-inflight", "7",
        ])
        #expect(limits.queueFullDisconnectMillis == 30_000)
        #expect(limits.queuedBytesBudget == 1_048_576)
        #expect(limits.meshRingSlots == 1024)
        #expect(limits.meshOverflowMessagesMax == 500)
        #expect(limits.connectionsPerShardMax == 77)
        #expect(limits.sessionQueueFullPolicy == .dropOldest)
        #expect(limits.sessionQueuedMessagesMax == 12)
        #expect(limits.outboundBytesMax == 65_536)
        #expect(limits.inflightMessagesMax == 7)
        #expect(try self.limits(["--queue-full-disconnect", "0"]).queueFullDisconnectMillis == nil)
    }

    @Test func badBoundsNameTheirFlag() {
        // Proves an out-of-range or non-numeric bound stops startup with an error naming the flag.
        for (flag, value) in [("--queued-bytes-budget", "10"), ("--mesh-ring-slots", "0"),
                              ("--queue-full-disconnect", "-1"), ("--max-connections-per-shard", "x"),
                              ("--queue-policy", "drop_all")] {
            #expect(throws: ConfigurationError.self) { try parseCommandLine([flag, value]) }
            do {
                _ = try parseCommandLine([flag, value])
            } catch {
                #expect(error.setting == flag)
            }
        }
    }
}
