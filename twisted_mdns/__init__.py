"""
twisted_mdns: multicast DNS (RFC 6762) and DNS-SD (RFC 6763) for Twisted,
correct on multi-homed hosts.
"""
