import MQTTCodec

// MARK: - Packet dispatch, CONNECT, DISCONNECT

extension Router {
    /// Handles one whole packet (`bytes` is exactly the frame).
    mutating func handleFrame<E: RouterEnvironment>(
        _ connection: ConnectionKey, frame: PacketDecoder.Frame, bytes: UnsafeRawBufferPointer, now: UInt64,
        env: inout E
    ) {
        guard var decoder = connections.decoder(of: connection) else { return }
        if frame.type == .publish, connections.sessionID(of: connection) != nil {
            let view: PublishView
            do throws(MQTTDecodeError) {
                view = try decoder.decodePublish(frame, in: bytes)
            } catch {
                failDecode(connection, error: error, packet: bytes, now: now, env: &env)
                return
            }
            handlePublish(connection, view, now: now, env: &env)
            return
        }
        let packet: Packet
        do throws(MQTTDecodeError) {
            packet = try decoder.decodePacket(frame, in: bytes)
        } catch {
            failDecode(connection, error: error, packet: bytes, now: now, env: &env)
            return
        }
        connections[connection]?.decoder = decoder
        guard let state = connections[connection] else { return }
        let version = state.protocolVersion
        if case .connect(let connect) = packet {
            if state.sessionID != nil {
                // [MQTT-3.1.0-2] A second CONNECT is a Protocol Error: close the connection.
                protocolViolation(connection, reason: .protocolError, because: "[MQTT-3.1.0-2] second CONNECT",
                                  now: now, env: &env)
                return
            }
            handleConnect(connection, connect, now: now, env: &env)
            return
        }
        guard let id = state.sessionID, let index = liveSessionIndex(id) else { return }
        switch packet {
        case .publish:
            preconditionFailure("PUBLISH is decoded as a view")
        case .puback(let ack):
            acknowledged(index, ack.packetIdentifier.rawValue, now: now, env: &env)
        case .pubrec(let ack):
            received(index, ack, connection: connection, version: version, now: now, env: &env)
        case .pubcomp(let ack):
            acknowledged(index, ack.packetIdentifier.rawValue, now: now, env: &env)
        case .pubrel(let ack):
            let known = sessions[live: index].incomingQoS2.remove(ack.packetIdentifier.rawValue) != nil
            let reply = PubCompPacket(
                packetIdentifier: ack.packetIdentifier, reasonCode: known ? .success : .packetIdentifierNotFound
            )
            writePacket(reply, to: connection, version: version, env: &env)
        case .subscribe(let subscribe):
            handleSubscribe(connection, index, subscribe, now: now, env: &env)
        case .unsubscribe(let unsubscribe):
            handleUnsubscribe(connection, index, unsubscribe, now: now, env: &env)
        case .pingreq:
            writePacket(PingRespPacket(), to: connection, version: version, env: &env)
        case .disconnect(let disconnect):
            handleDisconnect(connection, index, disconnect, now: now, env: &env)
        case .auth:
            // Enhanced authentication is not offered (no Authentication Method accepted at CONNECT), so AUTH is a
            // Protocol Error (MQTT 5.0 §4.12).
            protocolViolation(connection, reason: .protocolError, because: "AUTH without enhanced authentication",
                              now: now, env: &env)
        case .connack, .suback, .unsuback, .pingresp:
            // Server-to-client packets sent by a client: a Protocol Error.
            protocolViolation(connection, reason: .protocolError, because: "server-to-client packet from a client",
                              now: now, env: &env)
        case .connect:
            break
        }
    }

    /// A decode error: before CONNECT, a CONNACK refusal where the protocol asks for one; then close.
    mutating func failDecode<E: RouterEnvironment>(
        _ connection: ConnectionKey, error: MQTTDecodeError, packet: UnsafeRawBufferPointer, now: UInt64,
        env: inout E
    ) {
        guard let state = connections[connection] else { return }
        counters.protocolErrors += 1
        if state.phase == .awaitingConnect {
            if case .expectedConnect = error {
                // [MQTT-3.1.0-1] Anything but CONNECT first: close without CONNACK.
            } else if Self.isVersion5Connect(packet) {
                // MQTT 5.0 §3.2.2.2: a CONNACK with a reason code ≥ 0x80 may precede the close.
                writePacket(ConnAckPacket(reasonCode: error.reasonCode), to: connection, version: .v5, env: &env)
            } else if let code = error.connackReturnCodeV3, let reason = ReasonCode(connackReturnCodeV3: code) {
                // [MQTT-3.1.2-2] unsupported level → 0x01; [MQTT-3.1.3-9] identifier rejected → 0x02.
                writePacket(ConnAckPacket(reasonCode: reason), to: connection, version: .v3_1_1, env: &env)
            }
            counters.connectionsRefused += 1
            env.close(connection, afterFlush: true)
            detach(connection, discardWill: false, cause: .closedByBroker(nil), now: now, env: &env)
            return
        }
        closeConnection(connection, reason: error.disconnectReasonCode(for: state.protocolVersion),
                        reasonString: error.description, now: now, env: &env)
    }

    /// Whether the bytes start a CONNECT naming protocol `MQTT` level 5 (to answer a broken one in 5.0 terms).
    static func isVersion5Connect(_ packet: UnsafeRawBufferPointer) -> Bool {
        guard packet.count >= 2, packet[0] >> 4 == PacketType.connect.rawValue else { return false }
        var index = 1
        while index < packet.count && index < 5 && packet[index] & 0x80 != 0 { index += 1 }
        index += 1
        // Protocol name: 00 04 'M' 'Q' 'T' 'T', then the level.
        guard packet.count >= index + 7 else { return false }
        return packet[index] == 0 && packet[index + 1] == 4 && packet[index + 2] == UInt8(ascii: "M")
            && packet[index + 6] == 5
    }

    // MARK: - CONNECT

    mutating func handleConnect<E: RouterEnvironment>(
        _ connection: ConnectionKey, _ connect: ConnectPacket, now: UInt64, env: inout E
    ) {
        var connect = connect
        if let identity = env.transportUserName(connection) {
            // use_identity_as_username: the certificate's CN is the user name; the client's own name and password
            // are ignored (Mosquitto does the same).
            connect.userName = identity
            connect.password = nil
        }
        // Authentication happens here, on the accepting shard, exactly once: a handed-off connection arrives at its
        // home through `adopted`, which does not ask again.
        switch env.authenticate(connection, connect: connect) {
        case .accepted:
            break
        case .badCredentials:
            refuseConnect(connection, reason: .badUserNameOrPassword, version: connect.protocolVersion, now: now,
                          env: &env)
            return
        case .notAuthorized:
            refuseConnect(connection, reason: .notAuthorized, version: connect.protocolVersion, now: now, env: &env)
            return
        }
        var assigned: String? = nil
        var clientIdentifier = connect.clientIdentifier
        if clientIdentifier.isEmpty {
            // The codec already refused an empty identifier where the protocol forbids one (3.1, 3.1.1 without
            // clean session). Assign one that homes on this shard, so no hand-off is needed.
            repeat {
                assignedIdentifierCounter += 1
                clientIdentifier = "shoal-\(shard.rawValue)-\(assignedIdentifierCounter)"
            } while ShardID.home(forClientIdentifier: clientIdentifier.utf8, shardCount: configuration.shardCount) != shard
            assigned = clientIdentifier
        }
        let home = ShardID.home(forClientIdentifier: clientIdentifier.utf8, shardCount: configuration.shardCount)
        if home != shard {
            guard let state = connections.removeValue(forKey: connection) else { return }
            cancelTimer(state.timer, env: &env)
            counters.connectionsHandedOff += 1
            env.handOff(
                connection, to: home,
                state: HandoffState(connect: connect, acceptedAtMillis: state.acceptedAtMillis, acceptingShard: shard)
            )
            return
        }
        establish(connection, connect: connect, assignedIdentifier: assigned, now: now, env: &env)
    }

    /// Refuses a CONNECT that failed authentication: CONNACK with `reason` (3.1.1 return code 4 or 5), then close.
    mutating func refuseConnect<E: RouterEnvironment>(
        _ connection: ConnectionKey, reason: ReasonCode, version: ProtocolVersion, now: UInt64, env: inout E
    ) {
        writePacket(ConnAckPacket(reasonCode: reason), to: connection, version: version, env: &env)
        counters.authenticationFailures += 1
        counters.connectionsRefused += 1
        env.close(connection, afterFlush: true)
        detach(connection, discardWill: true, cause: .closedByBroker(reason), now: now, env: &env)
    }

    /// Attaches a connection whose CONNECT homes on this shard to its session and answers CONNACK.
    mutating func establish<E: RouterEnvironment>(
        _ connection: ConnectionKey, connect: ConnectPacket, assignedIdentifier: String?, now: UInt64, env: inout E
    ) {
        guard connections[connection] != nil else { return }
        let version = connect.protocolVersion
        let clientIdentifier = assignedIdentifier ?? connect.clientIdentifier
        cancelTimer(connections[connection]!.timer, env: &env)
        connections[connection]!.timer = nil

        var requestedExpiry: UInt32 = version == .v5 ? 0 : (connect.cleanStart ? 0 : UInt32.max)
        var clientReceiveMaximum = limits.inflightMessagesMax
        var clientPacketSizeMax = PacketDecoder.packetSizeMax
        var clientTopicAliasMaximum: UInt16 = 0
        var wantsResponseInformation = false
        for property in connect.properties.list {
            switch property {
            case .sessionExpiryInterval(let seconds): requestedExpiry = seconds
            case .receiveMaximum(let value): clientReceiveMaximum = Int(value)
            case .maximumPacketSize(let value): clientPacketSizeMax = Int(value)
            case .topicAliasMaximum(let value): clientTopicAliasMaximum = value
            case .requestResponseInformation(let flag): wantsResponseInformation = flag
            case .authenticationMethod:
                // Enhanced authentication is not offered: 0x8C Bad authentication method.
                writePacket(ConnAckPacket(reasonCode: .badAuthenticationMethod), to: connection, version: version, env: &env)
                counters.connectionsRefused += 1
                env.close(connection, afterFlush: true)
                detach(connection, discardWill: false, cause: .closedByBroker(.badAuthenticationMethod), now: now,
                       env: &env)
                return
            default: break
            }
        }
        if let will = connect.will, will.retain, !limits.retainAvailable {
            // [MQTT-3.2.2-?] Retain not supported: CONNACK 0x9A (5.0); 3.1.1 has no code for it, so refuse 0x05.
            writePacket(ConnAckPacket(reasonCode: version == .v5 ? .retainNotSupported : .notAuthorized),
                        to: connection, version: version, env: &env)
            counters.connectionsRefused += 1
            env.close(connection, afterFlush: true)
            detach(connection, discardWill: false, cause: .closedByBroker(.retainNotSupported), now: now, env: &env)
            return
        }
        var properties: [Property] = []
        var expiry = requestedExpiry
        if expiry > limits.sessionExpirySecondsMax && expiry != 0 {
            expiry = limits.sessionExpirySecondsMax
            if version == .v5 { properties.append(.sessionExpiryInterval(expiry)) }
        }

        // Takeover: [MQTT-3.1.4-3] the existing connection of this client identifier is closed, with
        // DISCONNECT 0x8E in 5.0; its will is handled as for any unclean close.
        if let existing = sessionByClient[clientIdentifier], let index = liveSessionIndex(existing),
           let old = sessions[live: index].connection
        {
            counters.takeovers += 1
            if sessions[live: index].protocolVersion == .v5 {
                writePacket(DisconnectPacket(reasonCode: .sessionTakenOver), to: old, version: .v5, env: &env)
            }
            env.close(old, afterFlush: true)
            detach(old, discardWill: false, cause: .takenOver, now: now, env: &env)
        }

        var sessionPresent = false
        var index: Int
        if let existing = sessionByClient[clientIdentifier], let found = liveSessionIndex(existing) {
            if connect.cleanStart {
                endSession(found, now: now, env: &env)
                index = createSession(clientIdentifier: clientIdentifier, connection: connection, version: version)
            } else {
                index = found
                sessionPresent = true
                counters.sessionsResumed += 1
                // A reconnection within the will delay cancels the will (MQTT 5.0 §3.1.3.2.2).
                cancelTimer(sessions[live: index].willTimer, env: &env)
                sessions[live: index].willTimer = nil
                sessions[live: index].will = nil
                cancelTimer(sessions[live: index].expiryTimer, env: &env)
                sessions[live: index].expiryTimer = nil
                sessions[live: index].connection = connection
                sessions[live: index].protocolVersion = version
            }
        } else {
            index = createSession(clientIdentifier: clientIdentifier, connection: connection, version: version)
        }
        sessions[live: index].expirySeconds = expiry
        sessions[live: index].username = connect.userName
        sessions[live: index].access = accessControl?.resolve(username: connect.userName, clientIdentifier: clientIdentifier)
        sessions[live: index].inflightMax = max(1, min(clientReceiveMaximum, version == .v5 ? 65_535 : limits.inflightMessagesMax))
        sessions[live: index].clientPacketSizeMax = clientPacketSizeMax
        // [MQTT-3.3.2-7] Aliases do not survive a reconnect: a new table for this connection, empty.
        sessions[live: index].topicAliasesToClient = OutgoingTopicAliases(maximum: clientTopicAliasMaximum)
        sessions[live: index].outboundBlocked = false
        sessions[live: index].will = connect.will
        sessions[live: index].willDelaySeconds = 0
        if let will = connect.will {
            for case .willDelayInterval(let seconds) in will.properties.list {
                sessions[live: index].willDelaySeconds = seconds
            }
        }
        let id = sessions[live: index].id

        // Keep alive: enforced at 1.5 × ([MQTT-3.1.2-24]); 5.0 may impose the broker's own (Server Keep Alive).
        var keepAlive = Int(connect.keepAliveSeconds)
        if version == .v5 && limits.keepAliveSecondsMax < 65_535
            && (keepAlive == 0 || keepAlive > limits.keepAliveSecondsMax)
        {
            keepAlive = limits.keepAliveSecondsMax
            properties.append(.serverKeepAlive(UInt16(keepAlive)))
        }
        connections[connection]!.phase = .connected(id)
        connections[connection]!.decoder.protocolVersion = version
        connections[connection]!.decoder.maximumPacketSize = limits.packetSizeBytesMax
        connections[connection]!.connectSessionExpirySeconds = requestedExpiry
        connections[connection]!.lastPacketMillis = now
        connections[connection]!.keepAliveWindowMillis = UInt64(keepAlive) * 1500
        if keepAlive > 0 {
            let handle = armTimer(.keepAlive(connection), at: now + UInt64(keepAlive) * 1500, env: &env)
            connections[connection]!.timer = handle
        }

        if version == .v5 {
            if let assignedIdentifier { properties.append(.assignedClientIdentifier(assignedIdentifier)) }
            if limits.receiveMaximum < 65_535 { properties.append(.receiveMaximum(UInt16(limits.receiveMaximum))) }
            if limits.packetSizeBytesMax < PacketDecoder.packetSizeMax {
                properties.append(.maximumPacketSize(UInt32(limits.packetSizeBytesMax)))
            }
            if limits.topicAliasMaximum > 0 {
                properties.append(.topicAliasMaximum(UInt16(min(limits.topicAliasMaximum, 65_535))))
            }
            if !limits.retainAvailable { properties.append(.retainAvailable(false)) }
            if wantsResponseInformation, let prefix = configuration.responseInformationPrefix {
                properties.append(.responseInformation(prefix + clientIdentifier))
            }
        }
        writePacket(
            ConnAckPacket(sessionPresent: sessionPresent, reasonCode: .success, properties: Properties(properties)),
            to: connection, version: version, env: &env
        )
        env.clientConnected(connection, event: ClientConnectedEvent(
            clientIdentifier: clientIdentifier, protocolVersion: version, cleanStart: connect.cleanStart,
            keepAliveSeconds: keepAlive, sessionPresent: sessionPresent, userName: connect.userName))
        if sessionPresent {
            // [MQTT-4.4.0-1] Unacknowledged PUBLISH (DUP set) and PUBREL packets are sent again, in order.
            counters.redeliveries += sessions[live: index].inflight.count
            sessions[live: index].markAllInflightUnsent()
            pump(index, now: now, env: &env)
        }
    }

    // MARK: - DISCONNECT

    mutating func handleDisconnect<E: RouterEnvironment>(
        _ connection: ConnectionKey, _ index: Int, _ disconnect: DisconnectPacket, now: UInt64, env: inout E
    ) {
        guard let state = connections[connection] else { return }
        for case .sessionExpiryInterval(let seconds) in disconnect.properties.list {
            // [MQTT-3.14.2-2] A Session Expiry Interval may not be set at DISCONNECT if CONNECT gave 0.
            if state.connectSessionExpirySeconds == 0 && seconds != 0 {
                protocolViolation(connection, reason: .protocolError,
                                  because: "[MQTT-3.14.2-2] Session Expiry Interval set at DISCONNECT after 0",
                                  now: now, env: &env)
                return
            }
            sessions[live: index].expirySeconds = min(seconds, limits.sessionExpirySecondsMax)
        }
        // [MQTT-3.1.2-10] After DISCONNECT 0x00 the will is discarded; 0x04 asks for it to be published.
        let discardWill = disconnect.reasonCode != .disconnectWithWillMessage
        env.close(connection, afterFlush: true)
        detach(connection, discardWill: discardWill, cause: .clientDisconnect(disconnect.reasonCode), now: now,
               env: &env)
    }
}
