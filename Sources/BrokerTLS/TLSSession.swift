import COpenSSL

// MARK: - Session

/// One TLS connection's engine: an `SSL` over two memory BIOs, so the caller keeps owning the socket (io_uring
/// reads and writes it; OpenSSL never sees a descriptor).
///
/// Ciphertext from the peer goes in with ``feed(_:)``; ``handshake()`` advances the handshake; ``read(into:)``
/// returns decrypted bytes; ``write(_:)`` encrypts. Everything OpenSSL wants to send (handshake flights, alerts,
/// records) accumulates in the outbound BIO: drain it with ``outboundByteCount`` and ``readOutbound(into:)`` after
/// each call. Used by one thread at a time; a connection handed to another shard carries its session along.
public final class TLSSession: @unchecked Sendable {
    let ssl: OpaquePointer
    let inbound: OpaquePointer
    let outbound: OpaquePointer
    /// Keeps the context alive as long as the session (OpenSSL counts references too; this documents it).
    public let context: TLSContext
    /// Whether the handshake has completed: application data flows from now on.
    public private(set) var isHandshakeComplete = false
    /// Whether a read or write failed (the session must not be resumed).
    private var failed = false

    init(context: TLSContext) throws(TLSError) {
        guard let ssl = SSL_new(context.context) else { throw .resources("a session") }
        guard let inbound = BIO_new(BIO_s_mem()), let outbound = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw .resources("memory BIOs")
        }
        // An empty memory BIO answers "retry" (-1), not end of file: more ciphertext may come.
        _ = shoal_BIO_set_mem_eof_return(inbound, -1)
        _ = shoal_BIO_set_mem_eof_return(outbound, -1)
        SSL_set_bio(ssl, inbound, outbound)  // the SSL owns both BIOs from here
        if context.isClient { SSL_set_connect_state(ssl) } else { SSL_set_accept_state(ssl) }
        self.ssl = ssl
        self.inbound = inbound
        self.outbound = outbound
        self.context = context
    }

    deinit {
        // OpenSSL drops a session from the server cache (no more session-ID resumption) when the SSL is freed
        // without a close_notify having been sent. MQTT clients usually just close the socket after DISCONNECT:
        // mark such healthy sessions as shut down so they stay resumable. Failed ones stay marked bad.
        if isHandshakeComplete && !failed { SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN) }
        SSL_free(ssl)
    }

    // MARK: Input

    /// Appends ciphertext received from the peer (a memory BIO grows as needed, so it takes every byte).
    public func feed(_ ciphertext: UnsafeRawBufferPointer) {
        guard let base = ciphertext.baseAddress, ciphertext.count > 0 else { return }
        var offset = 0
        while offset < ciphertext.count {
            let chunk = Int32(clamping: ciphertext.count - offset)
            let written = BIO_write(inbound, base + offset, chunk)
            precondition(written > 0, "memory BIO refused \(chunk) bytes")
            offset += Int(written)
        }
    }

    /// Advances the handshake with the ciphertext fed so far.
    /// - Returns: true once the handshake is complete, false while it needs more input from the peer.
    /// - Throws: ``TLSError/handshake(_:)`` with OpenSSL's reason (an alert for the peer is then in the outbound
    ///   BIO: send it before closing).
    public func handshake() throws(TLSError) -> Bool {
        if isHandshakeComplete { return true }
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            isHandshakeComplete = true
            return true
        }
        let error = SSL_get_error(ssl, result)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return false }
        var reason = openSSLErrors(default: "error \(error)")
        let verification = SSL_get_verify_result(ssl)
        if verification != X509_V_OK {
            reason += " (certificate: " + String(cString: X509_verify_cert_error_string(verification)) + ")"
        }
        throw .handshake(reason)
    }

    /// Decrypts into `buffer`.
    /// - Returns: the number of plaintext bytes written; 0 when more ciphertext is needed.
    /// - Throws: ``TLSError/closedByPeer`` after close_notify, ``TLSError/protocolError(_:)`` for bad records.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        var count = 0
        let result = SSL_read_ex(ssl, base, buffer.count, &count)
        if result == 1 { return count }
        let error = SSL_get_error(ssl, result)
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return 0
        case SSL_ERROR_ZERO_RETURN:
            throw .closedByPeer
        default:
            failed = true
            throw .protocolError(openSSLErrors(default: "error \(error)"))
        }
    }

    // MARK: Output

    /// Encrypts `plaintext` into records in the outbound BIO (as many records as 16 KiB limits require).
    /// - Throws: ``TLSError/protocolError(_:)`` when the session is unusable (failed or shut down).
    public func write(_ plaintext: UnsafeRawBufferPointer) throws(TLSError) {
        guard let base = plaintext.baseAddress, plaintext.count > 0 else { return }
        var offset = 0
        while offset < plaintext.count {
            var written = 0
            let result = SSL_write_ex(ssl, base + offset, plaintext.count - offset, &written)
            guard result == 1 else {
                failed = true
                throw .protocolError(openSSLErrors(default: "write error \(SSL_get_error(ssl, result))"))
            }
            offset += written
        }
    }

    /// Bytes waiting to be sent to the peer.
    public var outboundByteCount: Int { Int(shoal_BIO_pending(outbound)) }

    /// Moves up to `buffer.count` bytes waiting for the peer into `buffer`; returns how many.
    public func readOutbound(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let count = BIO_read(outbound, base, Int32(clamping: buffer.count))
        return max(0, Int(count))
    }

    /// Queues a close_notify alert (drain the outbound BIO to send it).
    public func close() {
        ERR_clear_error()
        if isHandshakeComplete { _ = SSL_shutdown(ssl) }
        ERR_clear_error()
    }

    // MARK: Peer

    /// The subject common name (CN) of the peer's verified certificate, or nil without a certificate or CN.
    public var peerCommonName: String? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        guard let name = X509_get_subject_name(certificate) else { return nil }
        let position = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard position >= 0, let entry = X509_NAME_get_entry(name, position),
              let data = X509_NAME_ENTRY_get_data(entry) else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else { return nil }
        defer { CRYPTO_free(utf8, #file, #line) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }

    /// The negotiated protocol ("TLSv1.3", "TLSv1.2").
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    /// The negotiated cipher suite's OpenSSL name.
    public var cipherName: String {
        guard let cipher = SSL_get_current_cipher(ssl) else { return "none" }
        return String(cString: SSL_CIPHER_get_name(cipher))
    }

    /// Whether the handshake resumed an earlier session (session cache or ticket).
    public var isSessionReused: Bool { SSL_session_reused(ssl) == 1 }

    // MARK: Client-side resumption (tests, benchmark)

    /// The session to offer on a later connection (client side), or nil before one is established.
    public var resumableSession: TLSResumableSession? {
        guard let session = SSL_get1_session(ssl) else { return nil }
        return TLSResumableSession(session)
    }

    /// Offers `session` for resumption (client side; call before the first ``handshake()``).
    public func offer(_ session: TLSResumableSession) {
        _ = SSL_set_session(ssl, session.session)
    }
}

/// A client's copy of an established session, offered again to resume it.
public final class TLSResumableSession: @unchecked Sendable {
    let session: OpaquePointer

    init(_ session: OpaquePointer) { self.session = session }

    deinit { SSL_SESSION_free(session) }
}

// MARK: - Record framing

/// TLS record framing, read without OpenSSL: lets a caller hand OpenSSL whole records one at a time.
public enum TLSRecord {
    /// Bytes in a record header: content type, version (2), length (2).
    public static let headerByteCount = 5

    /// The length of the first record in `bytes` (header included) if it is complete, else nil.
    @inline(__always)
    public static func firstRecordByteCount(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= headerByteCount else { return nil }
        let total = headerByteCount + (Int(bytes[3]) << 8 | Int(bytes[4]))
        return total <= bytes.count ? total : nil
    }
}
