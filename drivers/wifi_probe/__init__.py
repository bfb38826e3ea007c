"""WiFi probe-request sniffing: radiotap/802.11 parsing, pcap replay, live capture and sniffer nodes."""

KEY = "wifi_probe"
