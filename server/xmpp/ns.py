"""XML namespaces used on the wire (one name per namespace, no string literals elsewhere)."""

STREAM = "http://etherx.jabber.org/streams"
CLIENT = "jabber:client"
SERVER = "jabber:server"
COMPONENT = "jabber:component:accept"
STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
STANZAS_ERR = "urn:ietf:params:xml:ns:xmpp-stanzas"
TLS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
SESSION = "urn:ietf:params:xml:ns:xmpp-session"
SM = "urn:xmpp:sm:3"  # XEP-0198 stream management
SASL_CB = "urn:xmpp:sasl-cb:0"
XMPP_ERRORS = "urn:xmpp:errors"
ROSTER = "jabber:iq:roster"
ROSTER_VER = "urn:xmpp:features:rosterver"
PRE_APPROVAL = "urn:xmpp:features:pre-approval"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
PING = "urn:xmpp:ping"
VERSION = "jabber:iq:version"
TIME = "urn:xmpp:time"
LAST = "jabber:iq:last"
VCARD = "vcard-temp"
PRIVATE = "jabber:iq:private"
DELAY = "urn:xmpp:delay"
OFFLINE = "msgoffline"
XDATA = "jabber:x:data"
COMMANDS = "http://jabber.org/protocol/commands"
ADMIN = "http://jabber.org/protocol/admin"  # XEP-0133 nodes and FORM_TYPE
LOAD = "urn:vinesctl:load:0"  # the load of the server or a component, in its presence
VINES_ADMIN = "urn:vinesctl:admin"  # our own admin nodes (stats, sessions, reload)
XML = "http://www.w3.org/XML/1998/namespace"


def q(ns: str, tag: str) -> str:
    """Clark notation: q(CLIENT, 'message') == '{jabber:client}message'."""
    return f"{{{ns}}}{tag}"


# The three stanzas of a client stream, as the parser names them (every stream's stanzas are
# routed in the client namespace)
MESSAGE = q(CLIENT, "message")
PRESENCE = q(CLIENT, "presence")
IQ = q(CLIENT, "iq")
