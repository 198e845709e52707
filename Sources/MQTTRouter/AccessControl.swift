import MQTTCodec

// MARK: - Access rights

/// What an ACL rule grants: read (receive, subscribe), write (publish), both, or nothing (`deny`).
public struct AccessRights: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Receiving messages on a topic (and subscribing to filters that can match it).
    public static let read = AccessRights(rawValue: 1)
    /// Publishing to a topic.
    public static let write = AccessRights(rawValue: 2)
    /// `readwrite`.
    public static let readWrite: AccessRights = [.read, .write]
    /// `deny`: no right; a matching deny rule refuses access even where a later rule would grant it.
    public static let deny: AccessRights = []
}

/// One `topic` or `pattern` line of an ACL file.
public struct AccessRule: Sendable, Hashable {
    /// The rights granted; empty for `deny`.
    public var rights: AccessRights
    /// The topic filter as written (for a pattern, with `%c` and `%u` not yet substituted).
    public var filter: [UInt8]
    /// The 1-based line of the ACL file (for logs).
    public var line: Int

    public init(rights: AccessRights, filter: [UInt8], line: Int) {
        self.rights = rights
        self.filter = filter
        self.line = line
    }

    var isDeny: Bool { rights.isEmpty }
    /// Whether the filter mentions `%c` or `%u` (a pattern without either applies to every client as written).
    var usesUsername: Bool { AccessRule.contains(filter, UInt8(ascii: "u")) }

    static func contains(_ bytes: [UInt8], _ letter: UInt8) -> Bool {
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == UInt8(ascii: "%") && bytes[index + 1] == letter { return true }
            index += 1
        }
        return false
    }
}

// MARK: - The ACL file

/// Why ACL text was refused: the line (1-based) and what is wrong with it.
public struct AccessControlParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong with one line.
    public enum Problem: Equatable, Sendable {
        /// `topic` or `pattern` with no filter.
        case missingTopic
        /// An access word other than `read`, `write`, `readwrite` or `deny`.
        case invalidAccess(String)
        /// The filter is not a valid MQTT topic filter.
        case invalidTopicFilter(String)
        /// `user` with no name.
        case missingUsername
        /// A line that starts with none of `topic`, `pattern`, `user` or `#`.
        case unknownKeyword(String)
    }

    public var line: Int
    public var problem: Problem

    public init(line: Int, problem: Problem) {
        self.line = line
        self.problem = problem
    }

    /// What is wrong, without the line number.
    public var reason: String {
        switch problem {
        case .missingTopic: "missing topic filter"
        case .invalidAccess(let word): "invalid access type '\(word)' (expected read, write, readwrite or deny)"
        case .invalidTopicFilter(let filter): "invalid topic filter '\(filter)'"
        case .missingUsername: "missing user name after 'user'"
        case .unknownKeyword(let word): "unknown keyword '\(word)' (expected topic, pattern or user)"
        }
    }

    public var description: String { "line \(line): \(reason)" }
}

/// An ACL in Mosquitto's `acl_file` format, parsed: pure data, immutable once built, shared by every shard.
///
/// ```
/// # Lines before any `user` apply to anonymous clients.
/// topic read public/#
/// user alice
/// topic readwrite alice/#        # `topic FILTER` alone means readwrite
/// topic deny alice/secret
/// pattern write devices/%c/#     # patterns apply to every client; %c is the client ID, %u the user name
/// ```
///
/// Semantics, as Mosquitto 2's default ACL check (`security_default.c`): a client's rules are those of its user
/// (or the anonymous ones), then every pattern; within each group `deny` rules come first. The first rule whose
/// filter matches the topic decides if it is a `deny` (refused) or grants the requested right (allowed); a
/// matching rule with other rights is passed over. No deciding rule: refused. Patterns are skipped for a client
/// whose user name or client ID contains `+` or `#` (it could otherwise widen its own rules), and `%u` patterns
/// for a client without a user name.
public struct AccessControlList: Sendable, Equatable {
    /// Rules for clients without a user name (lines before the first `user`).
    public private(set) var anonymousRules: [AccessRule] = []
    /// Rules per user name.
    public private(set) var userRules: [String: [AccessRule]] = [:]
    /// `pattern` rules, for every client.
    public private(set) var patterns: [AccessRule] = []

    /// An empty ACL: it refuses everything (as an empty `acl_file` does in Mosquitto).
    public init() {}

    /// Parses ACL text.
    /// - Throws: ``AccessControlParseError`` naming the first bad line.
    public init(parsing text: String) throws(AccessControlParseError) {
        var user: String? = nil
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = Self.trimmed(rawLine)
            if line.isEmpty || line.first == "#" { continue }
            let keywordEnd = line.firstIndex(where: { $0 == " " || $0 == "\t" }) ?? line.endIndex
            let keyword = line[..<keywordEnd]
            let rest = Self.trimmed(line[keywordEnd...])
            switch keyword {
            case "user":
                if rest.isEmpty { throw AccessControlParseError(line: lineNumber, problem: .missingUsername) }
                user = String(rest)
            case "topic", "pattern":
                if rest.isEmpty { throw AccessControlParseError(line: lineNumber, problem: .missingTopic) }
                let wordEnd = rest.firstIndex(where: { $0 == " " || $0 == "\t" }) ?? rest.endIndex
                let word = rest[..<wordEnd]
                var filterText = Self.trimmed(rest[wordEnd...])
                let rights: AccessRights
                switch word {
                case "read": rights = .read
                case "write": rights = .write
                case "readwrite": rights = .readWrite
                case "deny": rights = .deny
                default:
                    // One word only: it is the filter, with readwrite access (Mosquitto's rule).
                    guard filterText.isEmpty else {
                        throw AccessControlParseError(line: lineNumber, problem: .invalidAccess(String(word)))
                    }
                    rights = .readWrite
                    filterText = word
                }
                if filterText.isEmpty { throw AccessControlParseError(line: lineNumber, problem: .missingTopic) }
                let filter = Array(filterText.utf8)
                do throws(TopicError) {
                    _ = try TopicFilter(validating: filter, allowShared: false)
                } catch {
                    throw AccessControlParseError(line: lineNumber, problem: .invalidTopicFilter(String(filterText)))
                }
                let rule = AccessRule(rights: rights, filter: filter, line: lineNumber)
                if keyword == "pattern" {
                    Self.add(rule, to: &patterns)
                } else if let user {
                    Self.add(rule, to: &userRules[user, default: []])
                } else {
                    Self.add(rule, to: &anonymousRules)
                }
            default:
                throw AccessControlParseError(line: lineNumber, problem: .unknownKeyword(String(keyword)))
            }
        }
    }

    /// Mosquitto's order: `deny` rules before the others (each group in file order).
    static func add(_ rule: AccessRule, to rules: inout [AccessRule]) {
        if rule.isDeny {
            let position = rules.firstIndex { !$0.isDeny } ?? rules.count
            rules.insert(rule, at: position)
        } else {
            rules.append(rule)
        }
    }

    static func trimmed(_ text: Substring) -> Substring {
        var result = text
        while let first = result.first, first == " " || first == "\t" || first == "\r" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" || last == "\r" { result = result.dropLast() }
        return result
    }

    /// The rules that apply to one client, with `%c` and `%u` substituted: computed once at CONNECT (and again on
    /// reload), so checks on the data path never build strings.
    public func resolve(username: String?, clientIdentifier: String) -> ClientAccess {
        var rules: [ClientAccess.Rule] = []
        let own = username.map { userRules[$0] ?? [] } ?? anonymousRules
        for rule in own { rules.append(ClientAccess.Rule(rights: rule.rights, filter: rule.filter)) }
        let dangerous: (String?) -> Bool = { text in
            guard let text else { return false }
            return text.utf8.contains(UInt8(ascii: "+")) || text.utf8.contains(UInt8(ascii: "#"))
        }
        // A user name or client ID with a wildcard would widen its own patterns: Mosquitto skips patterns for it.
        if !patterns.isEmpty && !dangerous(username) && !dangerous(clientIdentifier) {
            for pattern in patterns {
                if pattern.usesUsername && username == nil { continue }
                let filter = Self.substitute(pattern.filter, clientIdentifier: Array(clientIdentifier.utf8),
                                             username: username.map { Array($0.utf8) } ?? [])
                rules.append(ClientAccess.Rule(rights: pattern.rights, filter: filter))
            }
        }
        return ClientAccess(rules: rules)
    }

    static func substitute(_ filter: [UInt8], clientIdentifier: [UInt8], username: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(filter.count + clientIdentifier.count)
        var index = 0
        while index < filter.count {
            if filter[index] == UInt8(ascii: "%") && index + 1 < filter.count {
                if filter[index + 1] == UInt8(ascii: "c") {
                    output.append(contentsOf: clientIdentifier)
                    index += 2
                    continue
                }
                if filter[index + 1] == UInt8(ascii: "u") {
                    output.append(contentsOf: username)
                    index += 2
                    continue
                }
            }
            output.append(filter[index])
            index += 1
        }
        return output
    }
}

// MARK: - One client's rules

/// The ACL rules of one client, resolved (see ``AccessControlList/resolve(username:clientIdentifier:)``), in the
/// order they are checked. Checks allocate nothing.
public struct ClientAccess: Sendable, Equatable {
    /// One resolved rule.
    public struct Rule: Sendable, Equatable {
        public var rights: AccessRights
        /// A topic filter, wildcards included, without `%c`/`%u`.
        public var filter: [UInt8]
    }

    /// The rules, in checking order.
    public var rules: [Rule]

    /// Whether the client may publish to `topic` (`.write`) or receive a message on it (`.read`).
    public func allows(_ right: AccessRights, topic: [UInt8]) -> Bool {
        for rule in rules where TopicLevels.filter(rule.filter, matches: topic) {
            if rule.rights.isEmpty { return false }
            if rule.rights.contains(right) { return true }
        }
        return false
    }

    /// Whether a subscription to `filter` (its matching bytes, without `$share/{group}/`) can ever receive a
    /// message: refused when no read rule shares a topic with the filter, or when a `deny` rule covering the
    /// whole filter comes before every such read rule. Messages to a granted filter are still checked one by one
    /// on delivery, so a wildcard subscription receives only what the client may read.
    public func allowsSubscription(_ filter: ArraySlice<UInt8>) -> Bool {
        for rule in rules {
            if rule.rights.isEmpty {
                if TopicLevels.filter(rule.filter[...], covers: filter) { return false }
            } else if rule.rights.contains(.read) && TopicLevels.filter(rule.filter[...], intersects: filter) {
                return true
            }
        }
        return false
    }
}

// MARK: - Level relations between filters and topics

/// Topic-level relations the ACL needs beyond the trie: a single filter against a topic (no allocation, checked
/// against ``TopicFilter/matches(_:)`` in tests), and filter against filter.
enum TopicLevels {
    static let slash = UInt8(ascii: "/")
    static let plus = UInt8(ascii: "+")
    static let hash = UInt8(ascii: "#")
    static let dollar = UInt8(ascii: "$")

    /// The end of the level starting at `start` in `bytes`: the next `/` or the end.
    @inline(__always)
    static func levelEnd(_ bytes: ArraySlice<UInt8>, _ start: Int) -> Int {
        var index = start
        while index < bytes.endIndex && bytes[index] != slash { index += 1 }
        return index
    }

    @inline(__always)
    static func isWildcard(_ bytes: ArraySlice<UInt8>, _ start: Int, _ end: Int, _ byte: UInt8) -> Bool {
        end - start == 1 && bytes[start] == byte
    }

    /// Whether the first level of `bytes` is a wildcard.
    static func startsWithWildcard(_ bytes: ArraySlice<UInt8>) -> Bool {
        let end = levelEnd(bytes, bytes.startIndex)
        return isWildcard(bytes, bytes.startIndex, end, plus) || isWildcard(bytes, bytes.startIndex, end, hash)
    }

    /// Whether the first level of `bytes` is a literal starting with `$`.
    static func startsWithDollar(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.first == dollar
    }

    /// MQTT matching of one topic against one filter. [MQTT-4.7.2-1] A filter whose first level is a wildcard
    /// does not match a topic starting with `$`.
    static func filter(_ filter: [UInt8], matches topic: [UInt8]) -> Bool {
        let filter = filter[...]
        let topic = topic[...]
        if startsWithDollar(topic) && startsWithWildcard(filter) { return false }
        var filterStart = filter.startIndex
        var topicStart = topic.startIndex
        while true {
            let filterEnd = levelEnd(filter, filterStart)
            if isWildcard(filter, filterStart, filterEnd, hash) { return true }
            let topicEnd = levelEnd(topic, topicStart)
            if !isWildcard(filter, filterStart, filterEnd, plus)
                && !filter[filterStart..<filterEnd].elementsEqual(topic[topicStart..<topicEnd])
            {
                return false
            }
            let filterDone = filterEnd == filter.endIndex
            let topicDone = topicEnd == topic.endIndex
            if filterDone { return topicDone }
            if topicDone {
                // Topic ended, the filter continues: it matches only if what is left is exactly "#" ("a/#" ~ "a").
                return isOnlyHash(filter, from: filterEnd + 1)
            }
            filterStart = filterEnd + 1
            topicStart = topicEnd + 1
        }
    }

    /// Whether some topic matches both filters.
    static func filter(_ left: ArraySlice<UInt8>, intersects right: ArraySlice<UInt8>) -> Bool {
        // Topics starting with '$' are matched by neither a wildcard-first filter nor anything else but a '$' level.
        if (startsWithWildcard(left) && startsWithDollar(right)) || (startsWithWildcard(right) && startsWithDollar(left)) {
            return false
        }
        var leftStart = left.startIndex
        var rightStart = right.startIndex
        while true {
            let leftEnd = levelEnd(left, leftStart)
            let rightEnd = levelEnd(right, rightStart)
            if isWildcard(left, leftStart, leftEnd, hash) || isWildcard(right, rightStart, rightEnd, hash) { return true }
            let leftPlus = isWildcard(left, leftStart, leftEnd, plus)
            let rightPlus = isWildcard(right, rightStart, rightEnd, plus)
            if !leftPlus && !rightPlus && !left[leftStart..<leftEnd].elementsEqual(right[rightStart..<rightEnd]) {
                return false
            }
            let leftDone = leftEnd == left.endIndex
            let rightDone = rightEnd == right.endIndex
            if leftDone && rightDone { return true }
            if leftDone { return isOnlyHash(right, from: rightEnd + 1) }
            if rightDone { return isOnlyHash(left, from: leftEnd + 1) }
            leftStart = leftEnd + 1
            rightStart = rightEnd + 1
        }
    }

    /// Whether every topic matching `inner` also matches `outer`. Conservative: equal sets written differently
    /// (`+/#` and `#`) may answer `false`, which only makes a deny rule refuse fewer subscriptions.
    static func filter(_ outer: ArraySlice<UInt8>, covers inner: ArraySlice<UInt8>) -> Bool {
        // A wildcard-first outer filter matches no '$' topic, and a '$' inner filter has only '$' topics.
        if startsWithWildcard(outer) && startsWithDollar(inner) { return false }
        var outerStart = outer.startIndex
        var innerStart = inner.startIndex
        while true {
            let outerEnd = levelEnd(outer, outerStart)
            let innerEnd = levelEnd(inner, innerStart)
            if isWildcard(outer, outerStart, outerEnd, hash) { return true }
            if isWildcard(inner, innerStart, innerEnd, hash) { return false }
            if isWildcard(inner, innerStart, innerEnd, plus) {
                if !isWildcard(outer, outerStart, outerEnd, plus) { return false }
            } else if !isWildcard(outer, outerStart, outerEnd, plus)
                && !outer[outerStart..<outerEnd].elementsEqual(inner[innerStart..<innerEnd])
            {
                return false
            }
            let outerDone = outerEnd == outer.endIndex
            let innerDone = innerEnd == inner.endIndex
            if outerDone && innerDone { return true }
            if innerDone { return isOnlyHash(outer, from: outerEnd + 1) }
            if outerDone { return false }
            outerStart = outerEnd + 1
            innerStart = innerEnd + 1
        }
    }

    /// Whether the levels from `start` to the end are exactly "#".
    static func isOnlyHash(_ bytes: ArraySlice<UInt8>, from start: Int) -> Bool {
        start < bytes.endIndex && levelEnd(bytes, start) == bytes.endIndex && isWildcard(bytes, start, bytes.endIndex, hash)
    }
}
