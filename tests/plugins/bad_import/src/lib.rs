//! A component that imports something Tern does not give (a socket): the
//! server must refuse it at load time with a clear error.

wit_bindgen::generate!({
    inline: "
        package evil:net;
        interface socket {
            connect: func(host: string, port: u16) -> bool;
        }
        world bad {
            import socket;
            export probe: func() -> bool;
        }
    ",
});

struct Bad;

impl Guest for Bad {
    fn probe() -> bool {
        evil::net::socket::connect("192.0.2.1", 25)
    }
}

export!(Bad);
