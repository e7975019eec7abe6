"""Helpers shared by the test folders: harnesses for our server and for real third-party peers
(Prosody, dnsmasq). Interop helpers skip locally when their tool is missing, fail under CI=true.
"""
