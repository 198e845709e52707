import MQTTCodec

// MARK: - The router's ACL

extension Router {
    /// Installs a new ACL (or none): every session's rules are resolved again at once, so the next publish,
    /// subscribe and delivery follow the new file. Connections stay; existing subscriptions stay, and what they
    /// deliver is filtered by the new read rules.
    /// - Complexity: O(sessions × rules); control plane (startup and reload).
    public mutating func updateAccessControl(_ accessControl: AccessControlList?) {
        self.accessControl = accessControl
        for index in sessions.indices where sessions.isFilled(index) {
            let session = sessions[live: index]
            sessions[live: index].access = accessControl?.resolve(
                username: session.username, clientIdentifier: session.clientIdentifier)
        }
    }
}
