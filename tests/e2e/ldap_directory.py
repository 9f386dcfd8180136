"""A small in-memory LDAP directory (ldaptor) for the proxy-authentication tests: an
admin bind account and people under ou=people. Prints its port, then serves until killed."""

import sys

from ldaptor.inmemory import ReadOnlyInMemoryLDAPEntry
from ldaptor.interfaces import IConnectedLDAPEntry
from ldaptor.protocols.ldap.ldapserver import LDAPServer
from twisted.internet import reactor
from twisted.internet.protocol import ServerFactory
from twisted.python.components import registerAdapter

BASE = "dc=example,dc=org"


def directory(people: dict[str, str]) -> ReadOnlyInMemoryLDAPEntry:
    root = ReadOnlyInMemoryLDAPEntry(BASE, {"objectClass": [b"dcObject"], "dc": [b"example"]})
    root.addChild("cn=admin", {"objectClass": [b"person"], "cn": [b"admin"], "userPassword": [b"admin-secret"]})
    unit = root.addChild("ou=people", {"objectClass": [b"organizationalUnit"], "ou": [b"people"]})
    for name, password in people.items():
        unit.addChild(f"uid={name}", {"objectClass": [b"inetOrgPerson"], "uid": [name.encode()], "cn": [name.encode()],
                                      "userPassword": [password.encode()]})
    return root


class Factory(ServerFactory):
    protocol = LDAPServer

    def __init__(self, root):
        self.root = root


registerAdapter(lambda factory: factory.root, Factory, IConnectedLDAPEntry)

if __name__ == "__main__":
    people = dict(pair.split(":", 1) for pair in sys.argv[1:])
    port = reactor.listenTCP(0, Factory(directory(people)), interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    reactor.run()
