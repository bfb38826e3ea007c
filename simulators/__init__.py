"""Hardware simulators that speak the real interfaces (pty serial, pcap, video, HTTP/websocket)."""
