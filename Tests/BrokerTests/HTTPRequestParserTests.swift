import Testing
@testable import Broker

/// Parses `text` as bytes.
private func parse(_ text: String) throws(HTTPRequestError) -> HTTPRequestParser.Result {
    let bytes = Array(text.utf8)
    let result: Swift.Result<HTTPRequestParser.Result, HTTPRequestError> = bytes.withUnsafeBytes { raw in
        Swift.Result { () throws(HTTPRequestError) in try HTTPRequestParser.parse(raw) }
    }
    return try result.get()
}

/// The error `text` is refused with, or nil when it parses.
private func refusal(_ text: String) -> HTTPRequestError? {
    do {
        _ = try parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite("HTTP request parser")
struct HTTPRequestParserTests {
    @Test func parsesAPrometheusScrape() throws {
        // What Prometheus 2.x sends: HTTP/1.1 with Host, Accept and a user agent; keep-alive by default.
        let text = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nUser-Agent: Prometheus/2.45.0\r\n"
            + "Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1\r\nAccept-Encoding: gzip\r\n\r\n"
        let result = try parse(text)
        #expect(result == .request(HTTPRequest(method: "GET", path: "/metrics", version: .http11, keepAlive: true),
                                   byteCount: text.utf8.count))
    }

    @Test func reportsTheHeadLengthSoPipelinedRequestsFollow() throws {
        let first = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        let result = try parse(first + "GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
        guard case .request(let request, let byteCount) = result else {
            Issue.record("expected a request, got \(result)")
            return
        }
        #expect(request.path == "/metrics")
        #expect(byteCount == first.utf8.count)
    }

    @Test func asksForMoreBytesUntilTheEmptyLine() throws {
        let text = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        for length in 0..<text.utf8.count {
            let prefix = String(decoding: Array(text.utf8)[0..<length], as: UTF8.self)
            #expect(try parse(prefix) == .needMoreBytes, "prefix of \(length) bytes")
        }
    }

    @Test func connectionHeaderDecidesKeepAlive() throws {
        func keepAlive(_ text: String) throws -> Bool? {
            if case .request(let request, _) = try parse(text) { return request.keepAlive }
            return nil
        }
        #expect(try keepAlive("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == false)
        #expect(try keepAlive("GET /metrics HTTP/1.1\r\nHost: x\r\nconnection: Keep-Alive, Close\r\n\r\n") == false)
        #expect(try keepAlive("GET /metrics HTTP/1.0\r\n\r\n") == false)
        #expect(try keepAlive("GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == true)
        #expect(try keepAlive("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == true)
    }

    @Test func acceptsBareLineFeedsAndLeadingEmptyLines() throws {
        let text = "\r\n\nGET /metrics?name[]=x HTTP/1.1\nHost: x\n\n"
        #expect(try parse(text) == .request(
            HTTPRequest(method: "GET", path: "/metrics", version: .http11, keepAlive: true), byteCount: text.utf8.count))
    }

    @Test func reducesAbsoluteFormTargetsToTheirPath() throws {
        let text = "GET http://127.0.0.1:9100/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        guard case .request(let request, _) = try parse(text) else {
            Issue.record("expected a request")
            return
        }
        #expect(request.path == "/metrics")
    }

    @Test func refusesMalformedRequestLines() {
        #expect(refusal("GET\r\n\r\n") == .malformedRequestLine)
        #expect(refusal("GET /metrics\r\n\r\n") == .malformedRequestLine)
        #expect(refusal("GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == .malformedRequestLine)
        #expect(refusal("GET /metrics HTTP/1.1 extra\r\nHost: x\r\n\r\n") == .malformedRequestLine)
        #expect(refusal("G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == .malformedRequestLine)
        #expect(refusal("GET metrics HTTP/1.1\r\nHost: x\r\n\r\n") == .malformedRequestLine)
        #expect(refusal("GET /metrics MQTT/3.1\r\nHost: x\r\n\r\n") == .malformedRequestLine)
        #expect(refusal("\u{10}\u{0}\u{4}MQTT\r\n\r\n") == .malformedRequestLine)
        // Refused from the first byte, without waiting for a line end.
        #expect(refusal("\u{10}\u{10}") == .malformedRequestLine)
    }

    @Test func refusesOtherVersionsWith505() {
        #expect(refusal("GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n") == .versionNotSupported)
        #expect(refusal("GET /metrics HTTP/0.9\r\n\r\n") == .versionNotSupported)
        #expect(HTTPRequestError.versionNotSupported.statusCode == 505)
    }

    @Test func refusesMalformedHeaders() {
        // RFC 9112 §5.1: whitespace between the field name and the colon MUST be answered 400.
        #expect(refusal("GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n") == .malformedHeader)
        #expect(refusal("GET /metrics HTTP/1.1\r\nHost x\r\n\r\n") == .malformedHeader)
        #expect(refusal("GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n") == .malformedHeader)
        #expect(refusal("GET /metrics HTTP/1.1\r\nHost: x\u{1}y\r\n\r\n") == .malformedHeader)
        #expect(refusal("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n") == .malformedHeader)
        #expect(HTTPRequestError.malformedHeader.statusCode == 400)
    }

    @Test func requiresHostInHTTP11() {
        // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without Host.
        #expect(refusal("GET /metrics HTTP/1.1\r\n\r\n") == .missingHost)
        #expect(refusal("GET /metrics HTTP/1.0\r\n\r\n") == nil)
    }

    @Test func refusesBodies() {
        #expect(refusal("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello") == .bodyNotAccepted)
        #expect(refusal("POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n") == .bodyNotAccepted)
        #expect(refusal("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n") == nil)
    }

    @Test func boundsTheHeadSize() {
        // A head that never ends is refused once it passes the bound, before more is buffered.
        let endless = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + String(repeating: "a", count: 9000)
        #expect(refusal(endless) == .headTooLarge)
        let almost = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + String(repeating: "a", count: 8000)
        #expect(refusal(almost) == nil)
        let lines = "GET /metrics HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-A: b\r\n", count: 2000) + "\r\n"
        #expect(refusal(lines) == .headTooLarge)
        #expect(HTTPRequestError.headTooLarge.statusCode == 431)
    }
}

@Suite("HTTP responses")
struct HTTPResponseTests {
    @Test func servesMetricsOnGetAndHead() {
        let get = HTTPResponse.answer(HTTPRequest(method: "GET", path: "/metrics", version: .http11, keepAlive: true)) {
            "shoal_up 1\n"
        }
        #expect(get.statusCode == 200)
        #expect(get.contentType == "text/plain; version=0.0.4; charset=utf-8")
        #expect(get.body == Array("shoal_up 1\n".utf8))
        let encoded = String(decoding: get.encoded(keepAlive: true), as: UTF8.self)
        #expect(encoded == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                    + "Content-Length: 11\r\nConnection: keep-alive\r\n\r\nshoal_up 1\n")
        let head = String(decoding: get.encoded(keepAlive: false, includeBody: false), as: UTF8.self)
        #expect(head.hasSuffix("Content-Length: 11\r\nConnection: close\r\n\r\n"))
    }

    @Test func answersOtherPathsWith404AndOtherMethodsWith405() {
        var rendered = false
        let notFound = HTTPResponse.answer(HTTPRequest(method: "GET", path: "/", version: .http11, keepAlive: true)) {
            rendered = true
            return ""
        }
        #expect(notFound.statusCode == 404)
        #expect(!rendered, "the exposition is rendered only for /metrics")
        let post = HTTPResponse.answer(HTTPRequest(method: "POST", path: "/metrics", version: .http11, keepAlive: true)) {
            ""
        }
        #expect(post.statusCode == 405)
        #expect(post.headers == ["Allow: GET, HEAD"])
        #expect(String(decoding: post.encoded(keepAlive: false), as: UTF8.self)
                    .hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
    }
}
