#if canImport(Glibc)
import Glibc
#endif
import COpenSSL

// MARK: - TLS for the generator

/// The generator's TLS client context (`--tls`): OpenSSL straight on the non-blocking sockets (the generator
/// owns its sockets with epoll; no memory BIOs needed), trusting `--cafile` when given. Built once per run.
final class ClientTLS: @unchecked Sendable {
    let context: OpaquePointer

    /// Builds the context, or prints why not and returns nil.
    init?(caFile: String?) {
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            printError("shoal-bench: cannot create a TLS context")
            return nil
        }
        self.context = context
        _ = shoal_SSL_CTX_set_min_proto_version(context, Int32(TLS1_2_VERSION))
        // Partial writes: the send loop advances through its buffer like with send(2); the buffer may move between
        // retries because the output buffer is compacted.
        _ = shoal_SSL_CTX_set_mode(
            context, Int(SSL_MODE_ENABLE_PARTIAL_WRITE) | shoal_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER())
        if let caFile {
            guard SSL_CTX_load_verify_file(context, caFile) == 1 else {
                printError("shoal-bench: --cafile \(caFile): cannot load CA certificates")
                return nil
            }
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        }
    }

    deinit { SSL_CTX_free(context) }

    /// A client session on `fd`.
    func session(fd: Int32) -> OpaquePointer? {
        guard let ssl = SSL_new(context) else { return nil }
        _ = SSL_set_fd(ssl, fd)
        SSL_set_connect_state(ssl)
        return ssl
    }

    /// The reason for the last failure on `ssl` (drains OpenSSL's error queue).
    static func reason(_ ssl: OpaquePointer, _ result: Int32) -> String {
        let code = SSL_get_error(ssl, result)
        var text = "SSL error \(code)"
        let error = ERR_get_error()
        if error != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(error, &buffer, buffer.count)
            text += ": " + String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        if code == SSL_ERROR_SYSCALL { text += " (\(String(cString: strerror(errno))))" }
        ERR_clear_error()
        return text
    }
}
