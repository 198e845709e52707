import MQTTCodec
import MQTTRouter
import ShardRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// MARK: - What every shard needs to authenticate and authorise

/// The broker's security state, loaded from the configuration, with the other settings a reload can change in a
/// running shard (limits for new connections and queues, `sys_interval`, `connection_messages`): immutable,
/// shared by reference between shards. A reload builds a new value and hands it to the shards through
/// ``SecurityExchange``, the one channel from the control plane to running shards.
public struct SecurityTables: Sendable {
    /// The password file, if one is configured.
    public var passwordFile: PasswordFile?
    /// The ACL, if one is configured.
    public var accessControl: AccessControlList?
    /// Per MQTT listener, in configuration order: whether clients without a user name may connect.
    public var allowAnonymousByListener: [Bool]
    /// For connections whose listener is unknown.
    public var allowAnonymous: Bool
    /// The router's bounds; a shard applies the ones it can change at run time (`Router.updateLimits`).
    public var limits = Limits()
    /// Seconds between `$SYS` updates; 0 = none.
    public var sysIntervalSeconds = 10
    /// Whether connection and disconnection lines are logged.
    public var connectionMessages = true

    public init(passwordFile: PasswordFile? = nil, accessControl: AccessControlList? = nil,
                allowAnonymousByListener: [Bool] = [], allowAnonymous: Bool = true) {
        self.passwordFile = passwordFile
        self.accessControl = accessControl
        self.allowAnonymousByListener = allowAnonymousByListener
        self.allowAnonymous = allowAnonymous
    }

    /// Reads and parses the files `configuration` names.
    /// - Throws: ``ConfigurationError`` naming the setting and, for a bad line, the file and line.
    public static func load(_ configuration: BrokerConfiguration) throws(ConfigurationError) -> SecurityTables {
        var tables = SecurityTables(
            allowAnonymousByListener: configuration.listeners.map { $0.allowAnonymous ?? configuration.allowAnonymous },
            allowAnonymous: configuration.allowAnonymous)
        tables.limits = configuration.limits
        tables.sysIntervalSeconds = configuration.sysIntervalSeconds
        tables.connectionMessages = configuration.connectionMessages
        if let path = configuration.passwordFile {
            let text = try readSecurityFile(path, setting: "password_file")
            do throws(PasswordFileError) {
                tables.passwordFile = try PasswordFile(parsing: text, file: path)
            } catch {
                throw ConfigurationError(setting: "password_file", reason: error.description)
            }
        }
        if let path = configuration.aclFile {
            let text = try readSecurityFile(path, setting: "acl_file")
            do throws(AccessControlParseError) {
                tables.accessControl = try AccessControlList(parsing: text)
            } catch {
                throw ConfigurationError(setting: "acl_file", reason: "\(path):\(error.line): \(error.reason)")
            }
        }
        return tables
    }

    /// Whether a client with this CONNECT may connect through listener `listener` (nil: unknown).
    ///
    /// As Mosquitto 2: without a user name, `allow_anonymous` decides; with one and a password file, the file
    /// must hold the user and the password must match its hash; with one and no password file, the client is
    /// accepted (the name then only selects its ACL rules).
    public func authenticate(_ connect: ConnectPacket, listener: Int?) -> AuthenticationResult {
        guard let username = connect.userName else {
            let allowed = listener.flatMap { allowAnonymousByListener.indices.contains($0) ? allowAnonymousByListener[$0] : nil }
                ?? allowAnonymous
            return allowed ? .accepted : .notAuthorized
        }
        guard let passwordFile else { return .accepted }
        guard let password = connect.password else { return .badCredentials }
        return passwordFile.verify(username: username, password: password) ? .accepted : .badCredentials
    }
}

/// Reads a whole file as UTF-8 text.
/// - Throws: ``ConfigurationError`` naming `setting`, the path and the system error.
func readSecurityFile(_ path: String, setting: String) throws(ConfigurationError) -> String {
    switch readWholeFile(path) {
    case .success(let bytes): return String(decoding: bytes, as: UTF8.self)
    case .failure(let error):
        throw ConfigurationError(setting: setting, reason: "cannot read '\(path)': \(String(cString: strerror(error.code)))")
    }
}

/// A system error number from a file operation.
struct FileErrno: Error { var code: Int32 }

/// Reads a whole file (control plane: startup, reload, `shoal passwd`).
func readWholeFile(_ path: String) -> Result<[UInt8], FileErrno> {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { return .failure(FileErrno(code: errno)) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            return .failure(FileErrno(code: errno))
        }
        if count == 0 { return .success(bytes) }
        bytes.append(contentsOf: chunk[0..<count])
    }
}

// MARK: - Handing new tables to the shards

/// Where a reload leaves new ``SecurityTables`` for the shards. Each shard checks ``generation`` once per loop
/// turn (one relaxed atomic load) and, when it changed, takes the new tables under the lock and applies them on
/// its own thread. Shards share no mutable state: they share this immutable value, swapped whole.
public final class SecurityExchange: Sendable {
    private let tables: Mutex<SecurityTables>
    private let generationCounter = Atomic<UInt64>(1)

    public init(_ tables: SecurityTables) { self.tables = Mutex(tables) }

    /// Increases with each ``publish(_:)``.
    public var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    /// The tables now in force, with their generation.
    public func current() -> (tables: SecurityTables, generation: UInt64) {
        tables.withLock { ($0, generationCounter.load(ordering: .relaxed)) }
    }

    /// Replaces the tables; shards pick them up on their next loop turn.
    public func publish(_ new: SecurityTables) {
        tables.withLock {
            $0 = new
            generationCounter.add(1, ordering: .releasing)
        }
    }
}

/// Reloads the password file and the ACL named by `configuration` (SIGHUP, or a configuration reload): on success
/// the shards get the new tables on their next loop turn and connections stay; a file that cannot be read or
/// parsed is refused with a logged error, and the tables in force stay.
/// - Returns: whether the new tables were installed.
@discardableResult
public func reloadSecurity(configuration: BrokerConfiguration, exchange: SecurityExchange, logger: Logger) -> Bool {
    do throws(ConfigurationError) {
        let tables = try SecurityTables.load(configuration)
        exchange.publish(tables)
        logger.info("security reloaded: "
            + (tables.passwordFile.map { "\($0.entries.count) user(s) in \(configuration.passwordFile!)" } ?? "no password file")
            + ", " + (configuration.aclFile.map { "ACL \($0)" } ?? "no ACL"))
        return true
    } catch {
        logger.error("security reload refused, keeping the previous files: \(error)")
        return false
    }
}

// MARK: - One shard's part

/// What a shard keeps for authentication and the connection log: the tables it applied last; per connection
/// still waiting for its CONNECT, the listener and peer address (the listener decides `allow_anonymous`; the peer
/// is logged); and, while `connection_messages` is on, the peer of each established client for its disconnection
/// line (a short string: most IPv4 peers fit in a String's 15 inline bytes).
struct ShardSecurity {
    let exchange: SecurityExchange
    var tables: SecurityTables
    var generation: UInt64
    var awaitingConnect: [ConnectionKey: (listener: Int, peer: SocketAddress)] = [:]
    var peers: [ConnectionKey: String] = [:]
    /// The runtime's reason for the close being handled now (set around `Router.connectionClosed`).
    var closeReason: CloseReason? = nil

    init(exchange: SecurityExchange) {
        self.exchange = exchange
        (tables, generation) = exchange.current()
    }
}
