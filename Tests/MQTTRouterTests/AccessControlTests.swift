// ACL parsing and matching (Mosquitto's acl_file semantics), pure: no router involved.
import MQTTCodec
import Testing

@testable import MQTTRouter

@Suite struct AccessControlParseTests {
    @Test func parsesSectionsPatternsAndComments() throws {
        // Proves lines before `user` are anonymous rules, `user` opens a section, patterns are global, comments and
        // blank lines are skipped, and `topic FILTER` alone means readwrite.
        let acl = try AccessControlList(parsing: """
            # anonymous
            topic read public/#

            user alice
            topic alice/#
              topic write   out/x  
            pattern read devices/%c/#
            user bob
            topic deny secret/#
            """)
        #expect(acl.anonymousRules == [AccessRule(rights: .read, filter: Array("public/#".utf8), line: 2)])
        #expect(acl.userRules["alice"] == [
            AccessRule(rights: .readWrite, filter: Array("alice/#".utf8), line: 5),
            AccessRule(rights: .write, filter: Array("out/x".utf8), line: 6),
        ])
        #expect(acl.userRules["bob"] == [AccessRule(rights: .deny, filter: Array("secret/#".utf8), line: 9)])
        #expect(acl.patterns == [AccessRule(rights: .read, filter: Array("devices/%c/#".utf8), line: 7)])
    }

    @Test func denyRulesMoveToTheFrontOfTheirSection() throws {
        // Proves Mosquitto's ordering: within a section deny rules are checked before the others.
        let acl = try AccessControlList(parsing: "user u\ntopic read a/#\ntopic deny a/b\ntopic deny a/c\n")
        #expect(acl.userRules["u"]!.map(\.line) == [3, 4, 2])
    }

    @Test func badLinesNameTheirLineNumber() {
        // Proves each malformed line is refused with its 1-based line number and the reason.
        let cases: [(String, AccessControlParseError)] = [
            ("topic read a\nfoo bar\n", AccessControlParseError(line: 2, problem: .unknownKeyword("foo"))),
            ("\n\ntopic\n", AccessControlParseError(line: 3, problem: .missingTopic)),
            ("topic rw a/b\n", AccessControlParseError(line: 1, problem: .invalidAccess("rw"))),
            ("topic read a/#/b\n", AccessControlParseError(line: 1, problem: .invalidTopicFilter("a/#/b"))),
            ("topic read a+\n", AccessControlParseError(line: 1, problem: .invalidTopicFilter("a+"))),
            ("user\n", AccessControlParseError(line: 1, problem: .missingUsername)),
        ]
        for (text, expected) in cases {
            #expect(throws: expected) { try AccessControlList(parsing: text) }
        }
        #expect(AccessControlParseError(line: 2, problem: .unknownKeyword("foo")).description
            == "line 2: unknown keyword 'foo' (expected topic, pattern or user)")
    }
}

@Suite struct AccessControlMatchTests {
    func access(_ text: String, user: String?, client: String = "c1") throws -> ClientAccess {
        try AccessControlList(parsing: text).resolve(username: user, clientIdentifier: client)
    }

    @Test func anonymousRulesApplyOnlyToClientsWithoutUserName() throws {
        // Proves lines before any `user` apply to anonymous clients, and a user without a section gets nothing.
        let text = "topic read public/#\nuser alice\ntopic readwrite alice/#\n"
        let anonymous = try access(text, user: nil)
        #expect(anonymous.allows(.read, topic: Array("public/x".utf8)))
        #expect(!anonymous.allows(.write, topic: Array("public/x".utf8)))
        #expect(!anonymous.allows(.read, topic: Array("alice/x".utf8)))
        let alice = try access(text, user: "alice")
        #expect(alice.allows(.write, topic: Array("alice/x".utf8)))
        #expect(!alice.allows(.read, topic: Array("public/x".utf8)))
        let carol = try access(text, user: "carol")
        #expect(carol.rules.isEmpty)
        #expect(!carol.allows(.read, topic: Array("public/x".utf8)))
    }

    @Test func denyTakesPrecedenceWithinASection() throws {
        // Proves a deny rule refuses access even when it is written after a broader allow.
        let alice = try access("user alice\ntopic readwrite home/#\ntopic deny home/secret\n", user: "alice")
        #expect(alice.allows(.read, topic: Array("home/door".utf8)))
        #expect(!alice.allows(.read, topic: Array("home/secret".utf8)))
        #expect(!alice.allows(.write, topic: Array("home/secret".utf8)))
    }

    @Test func userRulesAreCheckedBeforePatterns() throws {
        // Proves Mosquitto's order: the user's own allow decides before a pattern deny is reached.
        let text = "user alice\ntopic read x/alice\npattern deny x/%u\n"
        let alice = try access(text, user: "alice")
        #expect(alice.allows(.read, topic: Array("x/alice".utf8)))
        #expect(!alice.allows(.write, topic: Array("x/alice".utf8)))
    }

    @Test func patternsSubstituteClientIdentifierAndUserName() throws {
        // Proves %c and %u substitution, and that %u patterns are skipped for clients without a user name.
        let text = "pattern readwrite devices/%c/#\npattern read users/%u/inbox\n"
        let alice = try access(text, user: "alice", client: "sensor-7")
        #expect(alice.allows(.write, topic: Array("devices/sensor-7/temp".utf8)))
        #expect(!alice.allows(.write, topic: Array("devices/sensor-8/temp".utf8)))
        #expect(alice.allows(.read, topic: Array("users/alice/inbox".utf8)))
        #expect(!alice.allows(.read, topic: Array("users/bob/inbox".utf8)))
        let anonymous = try access(text, user: nil, client: "sensor-7")
        #expect(anonymous.rules.count == 1)
        #expect(anonymous.allows(.read, topic: Array("devices/sensor-7/x".utf8)))
    }

    @Test func wildcardsInUserNameOrClientIdentifierDisablePatterns() throws {
        // Proves a client ID or user name containing + or # gets no pattern rules (it could widen them).
        let text = "pattern readwrite devices/%c/#\n"
        #expect(try access(text, user: nil, client: "evil/+").rules.isEmpty)
        #expect(try access(text, user: "a#", client: "ok").rules.isEmpty)
    }

    @Test func dollarTopicsNeedADollarRule() throws {
        // Proves [MQTT-4.7.2-1] in the ACL: `#` does not grant $SYS topics, an explicit $SYS rule does.
        #expect(!(try access("topic read #\n", user: nil)).allows(.read, topic: Array("$SYS/broker/uptime".utf8)))
        #expect(try access("topic read $SYS/#\n", user: nil).allows(.read, topic: Array("$SYS/broker/uptime".utf8)))
    }

    @Test func subscriptionDecision() throws {
        // Proves SUBSCRIBE is refused only when the filter can match no readable topic.
        let alice = try access("""
            user alice
            topic read sensors/#
            topic write out/#
            topic readwrite home/+/state
            topic deny home/garage/#
            """, user: "alice")
        func allows(_ filter: String) -> Bool { alice.allowsSubscription(Array(filter.utf8)[...]) }
        #expect(allows("sensors/#"))
        #expect(allows("sensors/a/b"))
        #expect(allows("#"))            // matches sensors/...: granted, filtered at delivery
        #expect(allows("+/a"))          // sensors/a
        #expect(!allows("out/#"))       // write only
        #expect(!allows("secret/#"))    // no rule
        #expect(allows("home/+/state"))
        #expect(allows("home/kitchen/state"))
        #expect(!allows("home/garage/state"))  // deny covers it entirely
        #expect(!allows("home/garage/#"))
        #expect(!allows("$SYS/#"))
    }

    @Test func singleFilterMatchingAgreesWithTheReferenceMatcher() throws {
        // Proves the ACL's non-allocating matcher equals TopicFilter.matches on every filter and topic over a small
        // alphabet (levels from {a, b, "", $x}, up to 3 levels; filters also with + and #).
        let topicLevels = ["a", "b", "", "$x"]
        let filterLevels = ["a", "b", "", "+", "#", "$x"]
        func combinations(_ levels: [String], upTo count: Int) -> [String] {
            var result: [[String]] = levels.map { [$0] }
            var frontier = result
            for _ in 1..<count {
                frontier = frontier.flatMap { prefix in levels.map { prefix + [$0] } }
                result += frontier
            }
            return result.map { $0.joined(separator: "/") }
        }
        let topics = combinations(topicLevels, upTo: 3).compactMap { try? TopicName(validating: $0) }
        let filters = combinations(filterLevels, upTo: 3).compactMap { try? TopicFilter(validating: $0, allowShared: false) }
        #expect(topics.count > 50 && filters.count > 100)
        for filter in filters {
            for topic in topics {
                let expected = filter.matches(topic)
                let actual = TopicLevels.filter(filter.bytes, matches: topic.bytes)
                if expected != actual { Issue.record("\(filter) vs \(topic): expected \(expected)") }
                // intersects/covers agree with matching when one side is a plain topic.
                #expect(TopicLevels.filter(filter.bytes[...], intersects: topic.bytes[...]) == expected)
                #expect(TopicLevels.filter(filter.bytes[...], covers: topic.bytes[...]) == expected)
            }
        }
    }

    @Test func filterRelationsAgreeWithTopicEnumeration() throws {
        // Proves `intersects` and `covers` between two filters against brute force over every topic of up to 4
        // levels from {a, b, $x}: intersects ⇔ some topic matches both; covers ⇔ every topic of the inner matches
        // the outer (for filters whose topics all fit in the enumeration).
        let levels = ["a", "b", "$x"]
        var topics: [TopicName] = []
        var frontier: [[String]] = [[]]
        for _ in 1...4 {
            frontier = frontier.flatMap { prefix in levels.map { prefix + [$0] } }
            topics += frontier.compactMap { try? TopicName(validating: $0.joined(separator: "/")) }
        }
        let filterTexts = ["a", "b", "+", "#", "a/#", "+/b", "a/+", "$x/#", "$x", "+/+", "a/b", "b/#", "$x/+"]
        let filters = filterTexts.compactMap { try? TopicFilter(validating: $0, allowShared: false) }
        for left in filters {
            for right in filters {
                let both = topics.contains { left.matches($0) && right.matches($0) }
                #expect(TopicLevels.filter(left.bytes[...], intersects: right.bytes[...]) == both,
                        "\(left) ∩ \(right)")
                let covered = topics.filter { right.matches($0) }.allSatisfy { left.matches($0) }
                #expect(TopicLevels.filter(left.bytes[...], covers: right.bytes[...]) == covered,
                        "\(left) ⊇ \(right)")
            }
        }
    }
}
