"""SIP lines (issue 6, in progress): the box as a back-to-back user agent between the office
(phones or PBX) and its SIP trunk, anchoring the media so it can announce and record.

Pure, no I/O (bytes and events in, values and actions out): `message`, `headers`, `uri` (the
messages), `sdp`, `rtp`, `telephone_event` (the media), `b2bua` (the calls). The modules with
sockets are `transport` (SIP over UDP, peers only) and `relay` (RTP, anchored media); wiring
them into the daemon comes next.
"""
