import COpenSSL

// MARK: - Settings

/// TLS protocol versions the engine speaks; older ones are never negotiated.
public enum TLSProtocolVersion: Sendable, Equatable {
    /// TLS 1.2 (RFC 5246).
    case tls12
    /// TLS 1.3 (RFC 8446).
    case tls13

    /// OpenSSL's constant (`TLS1_2_VERSION`, `TLS1_3_VERSION`).
    var openSSLValue: Int32 {
        switch self {
        case .tls12: Int32(TLS1_2_VERSION)
        case .tls13: Int32(TLS1_3_VERSION)
        }
    }
}

/// What a server context is built from: Mosquitto's listener settings, without the broker's types (BrokerTLS does
/// not depend on Broker).
public struct TLSServerSettings: Sendable, Equatable {
    /// PEM certificate chain, server certificate first.
    public var certificateChainFile: String
    /// PEM private key matching the first certificate.
    public var privateKeyFile: String
    /// PEM file of CA certificates trusted for client certificates (checked when they are required).
    public var caFile: String?
    /// Directory of hashed CA certificates (`c_rehash`) trusted for client certificates.
    public var caPath: String?
    /// Whether a client must present a certificate signed by a trusted CA (else the handshake fails).
    public var requireClientCertificate: Bool = false
    /// OpenSSL cipher list for TLS 1.2; `nil` keeps OpenSSL's default.
    public var ciphers: String?
    /// TLS 1.3 cipher suites; `nil` keeps OpenSSL's default.
    public var cipherSuitesTLS13: String?
    /// Key-exchange groups ("X25519:P-256"); `nil` keeps OpenSSL's default.
    public var groups: String?
    /// Lowest version accepted: 1.2 or 1.3.
    public var minimumVersion: TLSProtocolVersion = .tls12
    /// Entries of the server-side session cache (session-ID resumption, TLS 1.2); 0 turns the cache off.
    public var sessionCacheSize: Int = 20_480
    /// Whether stateless session tickets are issued (resumption in TLS 1.3, and 1.2 clients that ask).
    public var sessionTickets: Bool = true

    /// Creates settings with OpenSSL's defaults for everything but the certificate and key.
    public init(certificateChainFile: String, privateKeyFile: String) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
    }
}

// MARK: - Errors

/// Why a TLS context could not be built or a TLS session failed. Context errors name the setting at fault;
/// session errors affect only their connection.
public enum TLSError: Error, Equatable, CustomStringConvertible {
    /// The certificate chain file cannot be read or holds no valid certificate.
    case certificateFile(path: String, reason: String)
    /// The private key file cannot be read or holds no valid key.
    case keyFile(path: String, reason: String)
    /// The private key does not belong to the certificate.
    case keyMismatch(certificate: String, key: String)
    /// The CA file or directory cannot be loaded.
    case caFile(path: String, reason: String)
    /// Client certificates are required but no CA file or path says which issuers to trust.
    case noTrustedCA
    /// The TLS 1.2 cipher list selects nothing OpenSSL knows.
    case ciphers(String)
    /// The TLS 1.3 cipher suite list is invalid.
    case cipherSuites(String)
    /// The group list is invalid.
    case groups(String)
    /// OpenSSL could not create a context or session (out of memory).
    case resources(String)
    /// The handshake failed (bad client certificate, no common version or cipher, garbage instead of TLS...).
    case handshake(String)
    /// The peer sent bad data after the handshake, or its records failed to decrypt.
    case protocolError(String)
    /// The peer closed the TLS session (close_notify).
    case closedByPeer

    /// One line naming the file, list or failure.
    public var description: String {
        switch self {
        case .certificateFile(let path, let reason): "cannot use certificate file '\(path)': \(reason)"
        case .keyFile(let path, let reason): "cannot use key file '\(path)': \(reason)"
        case .keyMismatch(let certificate, let key): "key '\(key)' does not match certificate '\(certificate)'"
        case .caFile(let path, let reason): "cannot load CA certificates from '\(path)': \(reason)"
        case .noTrustedCA: "client certificates are required but no CA file or CA path is given"
        case .ciphers(let list): "no usable TLS 1.2 cipher in '\(list)'"
        case .cipherSuites(let list): "invalid TLS 1.3 cipher suites '\(list)'"
        case .groups(let list): "invalid key-exchange groups '\(list)'"
        case .resources(let what): "OpenSSL could not allocate \(what)"
        case .handshake(let reason): "handshake failed: \(reason)"
        case .protocolError(let reason): "TLS error: \(reason)"
        case .closedByPeer: "peer closed the TLS session"
        }
    }
}

/// Drains OpenSSL's thread-local error queue into one line (control plane and failure paths only).
func openSSLErrors(default fallback: String = "unknown OpenSSL error") -> String {
    var messages: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return messages.isEmpty ? fallback : messages.joined(separator: "; ")
}

// MARK: - Context

/// One listener's TLS configuration, loaded and checked: an `SSL_CTX` holding the certificate, key, trusted CAs,
/// versions, ciphers, session cache and ticket keys. Immutable after `init`, so shards share it by reference and
/// create sessions from it on their own threads (OpenSSL locks the shared session cache internally). A reload
/// builds a new context; sessions keep the one they were made from.
public final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    /// Whether this is a client context (tests and the benchmark) or a server one.
    public let isClient: Bool

    /// Builds a server context.
    /// - Throws: ``TLSError`` naming the file or list at fault.
    public init(server settings: TLSServerSettings) throws(TLSError) {
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_server_method()) else { throw .resources("a server context") }
        self.context = context
        self.isClient = false
        // From here on deinit frees the context if a check throws.
        _ = shoal_SSL_CTX_set_min_proto_version(context, settings.minimumVersion.openSSLValue)
        _ = SSL_CTX_set_options(context, shoal_SSL_OP_server_defaults()
                                    | (settings.sessionTickets ? 0 : shoal_SSL_OP_NO_TICKET()))
        // Release idle read/write buffers (about 34 KiB per idle connection otherwise); the write buffer may move
        // between retries because outbound ciphertext is drained from a memory BIO, never retried in place.
        _ = shoal_SSL_CTX_set_mode(
            context, shoal_SSL_MODE_RELEASE_BUFFERS() | shoal_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER())
        try Self.loadCertificate(context, settings)
        if let list = settings.ciphers, SSL_CTX_set_cipher_list(context, list) != 1 {
            ERR_clear_error()
            throw .ciphers(list)
        }
        if let list = settings.cipherSuitesTLS13, SSL_CTX_set_ciphersuites(context, list) != 1 {
            ERR_clear_error()
            throw .cipherSuites(list)
        }
        if let list = settings.groups, shoal_SSL_CTX_set1_groups_list(context, list) != 1 {
            ERR_clear_error()
            throw .groups(list)
        }
        try Self.loadTrust(context, caFile: settings.caFile, caPath: settings.caPath)
        if settings.requireClientCertificate {
            guard settings.caFile != nil || settings.caPath != nil else { throw .noTrustedCA }
            // As Mosquitto: client certificates are asked for only when required (a CA file alone asks for
            // nothing), and then a client without a valid one fails the handshake.
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
            if let caFile = settings.caFile, let names = SSL_load_client_CA_file(caFile) {
                SSL_CTX_set_client_CA_list(context, names)
            }
            ERR_clear_error()
        }
        // Session-ID resumption needs a context ID when client certificates are verified; one fixed ID suffices
        // because every context of a listener holds the same settings.
        let identifier: [UInt8] = Array("shoal".utf8)
        _ = SSL_CTX_set_session_id_context(context, identifier, UInt32(identifier.count))
        if settings.sessionCacheSize > 0 {
            _ = shoal_SSL_CTX_set_session_cache_mode(context, shoal_SSL_SESS_CACHE_SERVER())
            _ = shoal_SSL_CTX_sess_set_cache_size(context, settings.sessionCacheSize)
        } else {
            _ = shoal_SSL_CTX_set_session_cache_mode(context, 0)
        }
    }

    /// Builds a client context (tests, the benchmark): trusts `caFile`, presents `certificateFile`/`keyFile` when
    /// given, and speaks versions `minimumVersion...maximumVersion`.
    /// - Throws: ``TLSError`` naming the file at fault.
    public init(clientTrusting caFile: String?, certificateFile: String? = nil, keyFile: String? = nil,
                minimumVersion: TLSProtocolVersion = .tls12, maximumVersion: TLSProtocolVersion = .tls13)
        throws(TLSError) {
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw .resources("a client context") }
        self.context = context
        self.isClient = true
        _ = shoal_SSL_CTX_set_min_proto_version(context, minimumVersion.openSSLValue)
        _ = shoal_SSL_CTX_set_max_proto_version(context, maximumVersion.openSSLValue)
        _ = shoal_SSL_CTX_set_mode(context, shoal_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER())
        if let certificateFile, let keyFile {
            try Self.loadCertificate(context, TLSServerSettings(certificateChainFile: certificateFile,
                                                                privateKeyFile: keyFile))
        }
        if caFile != nil {
            try Self.loadTrust(context, caFile: caFile, caPath: nil)
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        }
    }

    deinit { SSL_CTX_free(context) }

    /// A new session over memory BIOs: a server session (accept state) from a server context, a client session
    /// (connect state) from a client one.
    /// - Throws: ``TLSError/resources(_:)`` when OpenSSL cannot allocate it.
    public func makeSession() throws(TLSError) -> TLSSession {
        try TLSSession(context: self)
    }

    static func loadCertificate(_ context: OpaquePointer, _ settings: TLSServerSettings) throws(TLSError) {
        guard SSL_CTX_use_certificate_chain_file(context, settings.certificateChainFile) == 1 else {
            throw .certificateFile(path: settings.certificateChainFile,
                                   reason: openSSLErrors(default: "no certificate"))
        }
        guard SSL_CTX_use_PrivateKey_file(context, settings.privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            let reason = openSSLErrors(default: "no private key")
            // OpenSSL reports a mismatching key here (X509_check_private_key inside); name it as such.
            if reason.contains("values mismatch") || reason.contains("key values") {
                throw .keyMismatch(certificate: settings.certificateChainFile, key: settings.privateKeyFile)
            }
            throw .keyFile(path: settings.privateKeyFile, reason: reason)
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            ERR_clear_error()
            throw .keyMismatch(certificate: settings.certificateChainFile, key: settings.privateKeyFile)
        }
    }

    static func loadTrust(_ context: OpaquePointer, caFile: String?, caPath: String?) throws(TLSError) {
        guard caFile != nil || caPath != nil else { return }
        if let caFile, SSL_CTX_load_verify_file(context, caFile) != 1 {
            throw .caFile(path: caFile, reason: openSSLErrors(default: "no certificate"))
        }
        if let caPath {
            // A directory is read lazily at verification time: check here that it exists and is readable.
            guard access(caPath, R_OK | X_OK) == 0, SSL_CTX_load_verify_dir(context, caPath) == 1 else {
                throw .caFile(path: caPath, reason: openSSLErrors(default: "not a readable directory"))
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
