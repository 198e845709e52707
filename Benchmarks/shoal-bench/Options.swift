#if canImport(Glibc)
import Glibc
#endif
import MQTTCodec

// MARK: - Scenarios

/// The traffic shapes the generator can drive. Topics are fixed per scenario so that runs against different
/// brokers are comparable.
enum Scenario: String, CaseIterable {
    /// P publishers on `bench/in/<p>` → 1 subscriber on `bench/in/+`.
    case fanIn = "fan-in"
    /// 1 publisher on `bench/out` → S subscribers on `bench/out`.
    case fanOut = "fan-out"
    /// N publishers, each on `bench/pair/<i>`, each read by its own subscriber.
    case pairs
    /// P publishers on `bench/shared/<p>` → S members of `$share/g/bench/shared/+` (each message to one member).
    case shared
    /// A healthy base scenario (``Options/slowBase``) plus K subscribers that subscribe and never read.
    case slowSubscriber = "slow-subscriber"
    /// K connections that connect and stay idle: connect rate and broker RSS per connection.
    case idle
    /// TLS handshakes per second: T threads each connect, complete a TLS handshake and CONNECT/CONNACK, close, and
    /// start again (`--tls` implied; `--tls-resume` resumes sessions instead of full handshakes).
    case handshakes
}

// MARK: - Options

/// Every command-line setting of `shoal-bench`, validated.
struct Options {
    var host = "127.0.0.1"
    var port: UInt16 = 1883
    var allowRemote = false
    var threads = 1
    var protocolVersion: ProtocolVersion = .v3_1_1
    var qos: QoS = .atMostOnce
    var scenario: Scenario = .pairs
    /// The scenario under `slow-subscriber`.
    var slowBase: Scenario = .fanOut
    var publishers: Int? = nil
    var subscribers: Int? = nil
    var pairs: Int? = nil
    /// Stalled subscribers; -1 until given, then the default 1 under slow-subscriber (0 is a valid baseline).
    var stalled = -1
    var connections = 1000
    var payloadByteCount = 64
    /// Messages per second per publisher; 0 means as fast as the window allows.
    var ratePerPublisher: Double = 0
    /// Sent-but-not-yet-received messages per publisher; bounds the queueing in kernel buffers.
    var window = 256
    /// QoS 1/2 packet identifiers in flight per publisher (capped by the broker's Receive Maximum in 5.0).
    var inflightMax = 65_535
    var warmupSeconds: Double = 2
    var durationSeconds: Double = 10
    /// How long publishers' last messages may take to arrive after the measurement before they count as lost.
    var drainSeconds: Double = 2
    var keepAliveSeconds: UInt16 = 0
    var brokerPID: Int32? = nil
    var json = false
    var quiet = false
    var label = ""
    /// Pending (connecting, awaiting CONNACK/SUBACK) connections per thread during setup.
    var connectConcurrency = 128
    /// Connect over TLS.
    var tls = false
    /// CA certificates trusted for the broker's certificate (`--cafile`); without it the certificate is not checked.
    var caFile: String? = nil
    /// `handshakes`: offer the previous session of the thread for resumption.
    var tlsResume = false

    static let usage = """
        usage: shoal-bench --scenario NAME [options]

        Target
          --host ADDR            broker address (default 127.0.0.1; only 127.0.0.0/8 and ::1 without --allow-remote)
          --port N               broker port (default 1883)
          --allow-remote         permit a target outside loopback
          --tls                  connect over TLS (1.2 or 1.3, as the broker chooses)
          --cafile FILE          CA certificates to verify the broker with (default: not verified)
          --tls-resume           handshakes: resume each thread's previous session instead of full handshakes
        Load
          --scenario NAME        fan-in | fan-out | pairs | shared | slow-subscriber | idle | handshakes
                                 (default pairs)
          --protocol 4|5         MQTT 3.1.1 or 5.0 (default 4)
          --qos 0|1|2            QoS of publications and subscriptions (default 0)
          --publishers P         fan-in (default 10), shared (default 4)
          --subscribers S        fan-out (default 50), shared (default 4)
          --pairs N              pairs (default 50)
          --base NAME            healthy scenario under slow-subscriber (default fan-out)
          --stalled K            subscribers that subscribe and never read (slow-subscriber; default 1)
          --connections K        idle connections (default 1000)
          --payload BYTES        payload size, at least 20 (default 64)
          --rate N               messages/s per publisher; 0 = maximum (default 0)
          --window W             sent-but-not-received messages per publisher (default 256)
          --inflight N           QoS 1/2 packet identifiers in flight per publisher (default 65535)
          --keepalive S          MQTT keep alive (default 0 = off)
        Run
          --threads T            event-loop threads (default 1)
          --warmup S             seconds before measuring (default 2)
          --duration S           seconds measured (default 10)
          --drain S              seconds allowed for in-flight messages after the run (default 2)
          --broker-pid PID       sample the broker's CPU and RSS from /proc
          --label TEXT           name carried into the JSON line
          --json                 print one JSON line with every figure after the table
          --quiet                no progress lines on stderr
        The process kills itself after warmup + duration + 30 s whatever happens.
        """

    /// Parses `arguments` (without the program name); on error prints why and exits with status 2.
    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var index = 0
        func fail(_ message: String) -> Never {
            printError("shoal-bench: \(message)\n\(usage)")
            exit(2)
        }
        func value(_ name: String) -> String {
            index += 1
            guard index < arguments.count else { fail("\(name) needs a value") }
            return arguments[index]
        }
        func integer(_ name: String, _ range: ClosedRange<Int>) -> Int {
            let text = value(name)
            guard let number = Int(text), range.contains(number) else { fail("\(name) \(text): expected \(range)") }
            return number
        }
        func real(_ name: String, minimum: Double) -> Double {
            let text = value(name)
            guard let number = Double(text), number >= minimum, number.isFinite else {
                fail("\(name) \(text): expected a number >= \(minimum)")
            }
            return number
        }
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--host": options.host = value(argument)
            case "--port": options.port = UInt16(integer(argument, 1...65_535))
            case "--allow-remote": options.allowRemote = true
            case "--tls": options.tls = true
            case "--cafile": options.caFile = value(argument)
            case "--tls-resume": options.tlsResume = true
            case "--threads": options.threads = integer(argument, 1...256)
            case "--protocol":
                switch value(argument) {
                case "4", "3.1.1": options.protocolVersion = .v3_1_1
                case "5", "5.0": options.protocolVersion = .v5
                case let other: fail("--protocol \(other): expected 4 or 5")
                }
            case "--qos": options.qos = QoS(rawValue: UInt8(integer(argument, 0...2)))!
            case "--scenario", "--base":
                let name = value(argument)
                guard let scenario = Scenario(rawValue: name) else {
                    fail("\(argument) \(name): expected one of \(Scenario.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                if argument == "--scenario" { options.scenario = scenario } else { options.slowBase = scenario }
            case "--publishers": options.publishers = integer(argument, 1...100_000)
            case "--subscribers": options.subscribers = integer(argument, 1...100_000)
            case "--pairs": options.pairs = integer(argument, 1...100_000)
            case "--stalled": options.stalled = integer(argument, 0...100_000)
            case "--connections": options.connections = integer(argument, 1...1_000_000)
            case "--payload": options.payloadByteCount = integer(argument, Payload.headerByteCount...16 << 20)
            case "--rate": options.ratePerPublisher = real(argument, minimum: 0)
            case "--window": options.window = integer(argument, 1...1_000_000)
            case "--inflight": options.inflightMax = integer(argument, 1...65_535)
            case "--keepalive": options.keepAliveSeconds = UInt16(integer(argument, 0...65_535))
            case "--warmup": options.warmupSeconds = real(argument, minimum: 0)
            case "--duration": options.durationSeconds = real(argument, minimum: 0.1)
            case "--drain": options.drainSeconds = real(argument, minimum: 0)
            case "--broker-pid": options.brokerPID = Int32(integer(argument, 1...Int(Int32.max)))
            case "--label": options.label = value(argument)
            case "--json": options.json = true
            case "--quiet": options.quiet = true
            case "-h", "--help":
                print(usage)
                exit(0)
            default: fail("unknown argument \(argument)")
            }
            index += 1
        }
        if options.scenario == .handshakes { options.tls = true }
        if options.slowBase == .handshakes { fail("--base must be fan-in, fan-out, pairs or shared") }
        if options.tlsResume && options.scenario != .handshakes { fail("--tls-resume applies to --scenario handshakes") }
        if options.scenario == .slowSubscriber {
            if options.slowBase == .slowSubscriber || options.slowBase == .idle {
                fail("--base must be fan-in, fan-out, pairs or shared")
            }
            if options.stalled < 0 { options.stalled = 1 }
        } else if options.stalled >= 0 {
            fail("--stalled applies to --scenario slow-subscriber only")
        }
        if options.effectiveScenario == .shared && options.protocolVersion != .v5 {
            printError("shoal-bench: note: shared subscriptions are an MQTT 5.0 feature; running them over 3.1.1")
        }
        return options
    }

    /// The scenario that shapes healthy traffic (the base of `slow-subscriber`).
    var effectiveScenario: Scenario { scenario == .slowSubscriber ? slowBase : scenario }
}

/// Writes a line to stderr.
func printError(_ message: String) {
    var line = message
    line.append("\n")
    // write(2) to descriptor 2: Glibc's `stderr` global is not concurrency-safe in Swift 6.
    _ = line.withCString { write(2, $0, strlen($0)) }
}

// MARK: - Payload layout

/// The bytes each PUBLISH payload starts with, so that a subscriber can measure latency and check order.
///
/// ```
/// 0..<8   : send time, CLOCK_MONOTONIC nanoseconds, little-endian
/// 8..<12  : publisher index, little-endian
/// 12..<20 : sequence number of this publisher's message, from 0, little-endian
/// 20...   : filler ('x')
/// ```
enum Payload {
    static let headerByteCount = 20
}
