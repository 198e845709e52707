// MARK: - HTTP responses of the metrics listener

/// An HTTP/1.1 response, encoded whole (status line, headers, body): the metrics listener's answers are small
/// and written with one enqueue.
public struct HTTPResponse: Sendable, Equatable {
    /// The status code.
    public var statusCode: Int
    /// The `Content-Type` of the body.
    public var contentType: String
    /// The body.
    public var body: [UInt8]
    /// Extra header lines ("Allow: GET, HEAD"), without line ends.
    public var headers: [String]

    /// Makes a response.
    public init(statusCode: Int, contentType: String = "text/plain; charset=utf-8", body: [UInt8],
                headers: [String] = []) {
        self.statusCode = statusCode
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    /// A plain-text error answer whose body is the reason phrase.
    public static func error(_ statusCode: Int, headers: [String] = []) -> HTTPResponse {
        HTTPResponse(statusCode: statusCode, body: Array((reasonPhrase(statusCode) + "\n").utf8), headers: headers)
    }

    /// The response's bytes. `Content-Length` is always the body's length; with `includeBody` false (a HEAD
    /// request) the body itself is left out (RFC 9110 §9.3.2).
    public func encoded(keepAlive: Bool, includeBody: Bool = true) -> [UInt8] {
        var head = "HTTP/1.1 \(statusCode) \(Self.reasonPhrase(statusCode))\r\n"
        head += "Content-Type: \(contentType)\r\n"
        head += "Content-Length: \(body.count)\r\n"
        for header in headers { head += header + "\r\n" }
        head += keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n"
        var bytes = Array(head.utf8)
        if includeBody { bytes += body }
        return bytes
    }

    /// The reason phrase of the status codes the listener uses.
    public static func reasonPhrase(_ statusCode: Int) -> String {
        switch statusCode {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status \(statusCode)"
        }
    }
}

// MARK: - Routing one request

extension HTTPResponse {
    /// The answer to `request`: GET or HEAD of `/metrics` gets `exposition()` (called only then), any other path
    /// 404, any other method 405.
    public static func answer(_ request: HTTPRequest, exposition: () -> String) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return .error(405, headers: ["Allow: GET, HEAD"])
        }
        guard request.path == "/metrics" else { return .error(404) }
        return HTTPResponse(statusCode: 200, contentType: MetricsExposition.contentType, body: Array(exposition().utf8))
    }
}
