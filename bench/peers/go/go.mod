module weft/bench/peers/go_io_peer

go 1.19
