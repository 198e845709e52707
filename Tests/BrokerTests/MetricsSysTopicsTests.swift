import Testing
@testable import Broker

@Suite("$SYS topics")
struct MetricsSysTopicsTests {
    @Test func firstUpdatePublishesEveryFigureWithMosquittosNamesAndNoLoad() {
        var publisher = SysTopicPublisher(prefix: "$SYS/broker/")
        var figures = SysFigures()
        figures.clientsConnected = 3
        figures.clientsTotal = 5
        figures.publishReceived = 12
        figures.retained = 2
        let messages = publisher.messages(figures, nowMillis: 1000, extra: [("version", "shoal version 1")])
        let byTopic = Dictionary(uniqueKeysWithValues: messages.map { ($0.topic, $0.payload) })
        #expect(byTopic["$SYS/broker/version"] == "shoal version 1")
        #expect(byTopic["$SYS/broker/clients/connected"] == "3")
        #expect(byTopic["$SYS/broker/clients/disconnected"] == "2")
        #expect(byTopic["$SYS/broker/clients/total"] == "5")
        #expect(byTopic["$SYS/broker/publish/messages/received"] == "12")
        #expect(byTopic["$SYS/broker/retained messages/count"] == "2")
        #expect(byTopic["$SYS/broker/subscriptions/count"] == "0")
        #expect(!byTopic.keys.contains { $0.contains("/load/") }, "Mosquitto publishes no load before an interval")
    }

    @Test func laterUpdatesPublishOnlyWhatChangedPlusLoad() {
        var publisher = SysTopicPublisher(prefix: "$SYS/broker/shards/1/")
        var figures = SysFigures()
        _ = publisher.messages(figures, nowMillis: 0)
        figures.publishReceived = 60
        figures.packetsReceived = 60
        let messages = publisher.messages(figures, nowMillis: 60_000)
        let byTopic = Dictionary(uniqueKeysWithValues: messages.map { ($0.topic, $0.payload) })
        #expect(byTopic["$SYS/broker/shards/1/publish/messages/received"] == "60")
        #expect(byTopic["$SYS/broker/shards/1/clients/connected"] == nil, "unchanged: not published again")
        // 60 messages in 60 s is 60 per minute; from 0 the 1-minute average moves 1 - e^-1 of the way there.
        #expect(byTopic["$SYS/broker/shards/1/load/publish/received/1min"] == "37.93")
        #expect(byTopic["$SYS/broker/shards/1/load/publish/received/5min"] == "10.88")
        #expect(byTopic["$SYS/broker/shards/1/load/publish/received/15min"] == "3.87")
        #expect(byTopic["$SYS/broker/shards/1/load/messages/received/1min"] == "37.93")
        // First load values are published even when zero (the change is from "never published").
        #expect(byTopic["$SYS/broker/shards/1/load/connections/1min"] == "0.00")
        let again = publisher.messages(figures, nowMillis: 120_000)
        let after = Dictionary(uniqueKeysWithValues: again.map { ($0.topic, $0.payload) })
        // Nothing new in the second minute: the average decays by e^-1.
        #expect(after["$SYS/broker/shards/1/load/publish/received/1min"] == "13.95")
        #expect(after["$SYS/broker/shards/1/publish/messages/received"] == nil)
    }

    @Test func sumsShardFigures() {
        var one = SysFigures()
        one.clientsConnected = 1
        one.bytesSent = 10
        var two = SysFigures()
        two.clientsConnected = 2
        two.bytesSent = 5
        let sum = one + two
        #expect(sum.clientsConnected == 3)
        #expect(sum.bytesSent == 15)
    }

    @Test func formatsLikePrintfTwoDecimals() {
        #expect(SysTopicPublisher.formatHundredths(0) == "0.00")
        #expect(SysTopicPublisher.formatHundredths(3.14159) == "3.14")
        #expect(SysTopicPublisher.formatHundredths(2.005) == "2.01" || SysTopicPublisher.formatHundredths(2.005) == "2.00")
        #expect(SysTopicPublisher.formatHundredths(100.1) == "100.10")
        #expect(SysTopicPublisher.formatHundredths(0.07) == "0.07")
    }
}
