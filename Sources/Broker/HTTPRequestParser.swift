// MARK: - HTTP/1.1 requests, as much as a metrics endpoint needs

/// The HTTP versions the metrics listener speaks.
public enum HTTPVersion: Sendable, Equatable {
    case http10, http11
}

/// An HTTP request head: the request line and the headers the metrics listener acts on.
public struct HTTPRequest: Sendable, Equatable {
    /// The method token, as sent (methods are case-sensitive, RFC 9110 §9.1).
    public var method: String
    /// The request target's path, without query ("/metrics"); absolute-form targets are reduced to their path.
    public var path: String
    /// The protocol version.
    public var version: HTTPVersion
    /// Whether the connection stays open after the response: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only
    /// with `Connection: keep-alive` (RFC 9112 §9.3).
    public var keepAlive: Bool

    /// Makes a request head.
    public init(method: String, path: String, version: HTTPVersion, keepAlive: Bool) {
        self.method = method
        self.path = path
        self.version = version
        self.keepAlive = keepAlive
    }
}

/// Why a request head was refused. Each maps to the status answered before the connection is closed.
public enum HTTPRequestError: Error, Sendable, Equatable {
    /// The request line is not `method SP target SP HTTP-version`: 400.
    case malformedRequestLine
    /// A header line is malformed (no colon, whitespace before it, obsolete folding, control bytes): 400.
    case malformedHeader
    /// An HTTP/1.1 request without `Host` (RFC 9112 §3.2: MUST answer 400).
    case missingHost
    /// A request with a body (`Content-Length` other than 0, or `Transfer-Encoding`): 400. The endpoint takes
    /// no bodies, and refusing them keeps the parser free of body framing.
    case bodyNotAccepted
    /// The head is longer than ``HTTPRequestParser/headBytesMax``: 431.
    case headTooLarge
    /// A version other than HTTP/1.0 and HTTP/1.1: 505.
    case versionNotSupported

    /// The status code answered for this error.
    public var statusCode: Int {
        switch self {
        case .malformedRequestLine, .malformedHeader, .missingHost, .bodyNotAccepted: 400
        case .headTooLarge: 431
        case .versionNotSupported: 505
        }
    }
}

/// Parses HTTP/1.x request heads from bytes, incrementally: "need more bytes", or a request and the bytes it
/// took. Bounded: a head longer than ``headBytesMax`` is refused before more is buffered. Lines end in CRLF; a
/// bare LF is accepted too (RFC 9112 §2.2 allows it).
public enum HTTPRequestParser {
    /// The longest request head accepted (request line and headers), in bytes.
    public static let headBytesMax = 8192

    /// What ``parse(_:)`` found.
    public enum Result: Sendable, Equatable {
        /// The head is incomplete: call again with more bytes.
        case needMoreBytes
        /// A whole request head of `byteCount` bytes (pipelined requests may follow it).
        case request(HTTPRequest, byteCount: Int)
    }

    /// Parses the request head at the start of `bytes`.
    /// - Throws: ``HTTPRequestError`` for a head that can never become valid.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(HTTPRequestError) -> Result {
        // Find the end of the head: an empty line. Leading empty lines before the request line are skipped
        // (RFC 9112 §2.2: a server SHOULD ignore at least one).
        var start = 0
        while start < bytes.count && (bytes[start] == 0x0D || bytes[start] == 0x0A) {
            start += 1
            if start > headBytesMax { throw .headTooLarge }
        }
        // A request line starts with a method token: anything else (an MQTT CONNECT sent to the wrong port, TLS)
        // is refused at once rather than buffered until the head bound.
        if start < bytes.count && !isTokenByte(bytes[start]) { throw .malformedRequestLine }
        var lines: [Range<Int>] = []
        var lineStart = start
        var index = start
        var headEnd: Int? = nil
        while index < bytes.count {
            if index - start >= headBytesMax { throw .headTooLarge }
            if bytes[index] == 0x0A {
                var lineEnd = index
                if lineEnd > lineStart && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                if lineEnd == lineStart {
                    headEnd = index + 1
                    break
                }
                lines.append(lineStart..<lineEnd)
                lineStart = index + 1
            }
            index += 1
        }
        guard let headEnd else {
            if bytes.count - start >= headBytesMax { throw .headTooLarge }
            return .needMoreBytes
        }
        guard let requestLine = lines.first else { throw .malformedRequestLine }
        var request = try parseRequestLine(bytes, requestLine)
        var hasHost = false
        var connectionClose = false
        var connectionKeepAlive = false
        for line in lines.dropFirst() {
            let (name, value) = try parseHeader(bytes, line)
            switch name {
            case "host":
                hasHost = true
            case "connection":
                for option in value.split(separator: ",") {
                    switch option.trimmingSpaces().lowercased() {
                    case "close": connectionClose = true
                    case "keep-alive": connectionKeepAlive = true
                    default: break
                    }
                }
            case "content-length":
                guard let length = Int(value), length >= 0 else { throw .malformedHeader }
                if length != 0 { throw .bodyNotAccepted }
            case "transfer-encoding":
                throw .bodyNotAccepted
            default:
                break
            }
        }
        if request.version == .http11 && !hasHost { throw .missingHost }
        request.keepAlive = request.version == .http11 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        return .request(request, byteCount: headEnd)
    }

    // MARK: - Pieces

    /// `method SP request-target SP HTTP-version`.
    static func parseRequestLine(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>)
        throws(HTTPRequestError) -> HTTPRequest {
        let parts = bytes[line].split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, parts[0].allSatisfy(isTokenByte),
              parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .malformedRequestLine }
        let version: HTTPVersion
        switch String(decoding: parts[2], as: UTF8.self) {
        case "HTTP/1.1": version = .http11
        case "HTTP/1.0": version = .http10
        case let other where other.utf8.count == 8 && other.hasPrefix("HTTP/"):
            let digits = Array(other.utf8.dropFirst(5))
            guard isDigit(digits[0]), digits[1] == UInt8(ascii: "."), isDigit(digits[2]) else {
                throw .malformedRequestLine
            }
            throw .versionNotSupported
        default:
            throw .malformedRequestLine
        }
        var target = String(decoding: parts[1], as: UTF8.self)
        if target.hasPrefix("http://") || target.hasPrefix("https://") {
            // Absolute form (RFC 9112 §3.2.2): keep the path after the authority.
            let afterScheme = target[target.index(target.firstIndex(of: ":")!, offsetBy: 3)...]
            target = afterScheme.firstIndex(of: "/").map { String(afterScheme[$0...]) } ?? "/"
        } else if !target.hasPrefix("/") && target != "*" {
            throw .malformedRequestLine
        }
        let path = target.firstIndex(of: "?").map { String(target[..<$0]) } ?? target
        return HTTPRequest(method: String(decoding: parts[0], as: UTF8.self), path: path, version: version,
                           keepAlive: false)
    }

    /// `field-name ":" OWS field-value OWS`; the name comes back lowercased.
    static func parseHeader(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>)
        throws(HTTPRequestError) -> (name: String, value: String) {
        let field = bytes[line]
        // Obsolete line folding (a line starting with SP or HT) is refused (RFC 9112 §5.2).
        guard let first = field.first, first != 0x20, first != 0x09,
              let colon = field.firstIndex(of: UInt8(ascii: ":")) else { throw .malformedHeader }
        let name = field[field.startIndex..<colon]
        // No whitespace between name and colon (RFC 9112 §5.1: MUST answer 400).
        guard !name.isEmpty, name.allSatisfy(isTokenByte) else { throw .malformedHeader }
        let value = field[(colon + 1)...]
        // Field values: visible bytes, SP, HT and obs-text; no other control bytes.
        guard value.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else { throw .malformedHeader }
        return (String(decoding: name, as: UTF8.self).lowercased(),
                String(decoding: value, as: UTF8.self).trimmingSpaces())
    }

    /// RFC 9110 §5.6.2 `tchar`.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP's OWS).
    fileprivate func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
    }
}
