//! Redis `MONITOR`: every command the server executes, in execution order, including the
//! commands run inside Lua scripts — the ground truth for checks such as "two compactors never
//! held the same room at once".

use std::io::{BufRead, BufReader};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One executed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// `lua` for commands run by a script, else the client's `ip:port`.
    pub client: String,
    /// The command name (upper-cased) and its arguments, unescaped. Arguments of at most
    /// 4 KiB are kept in full; longer ones are truncated.
    pub args: Vec<Vec<u8>>,
}

impl Command {
    /// Argument `i` as text.
    pub fn arg(&self, i: usize) -> String {
        self.args
            .get(i)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .unwrap_or_default()
    }

    /// Whether this is command `name` (case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.args
            .first()
            .is_some_and(|a| a.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// A `MONITOR` connection collecting commands on a thread until stopped.
#[derive(Debug)]
pub struct Monitor {
    stream: TcpStream,
    commands: Arc<Mutex<Vec<Command>>>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts monitoring the Redis on `127.0.0.1:port`.
    pub fn start(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
        let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
        std::io::Write::write_all(&mut &stream, b"MONITOR\r\n").expect("send MONITOR");
        let mut ok = String::new();
        reader.read_line(&mut ok).expect("MONITOR reply");
        assert_eq!(ok.trim_end(), "+OK", "MONITOR refused");
        let commands = Arc::new(Mutex::new(Vec::new()));
        let sink = commands.clone();
        let thread = std::thread::spawn(move || {
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if let Some(command) = parse(&line) {
                    sink.lock().unwrap().push(command);
                }
            }
        });
        Monitor {
            stream,
            commands,
            thread: Some(thread),
        }
    }

    /// Stops monitoring and returns everything seen.
    pub fn stop(mut self) -> Vec<Command> {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        std::mem::take(&mut *self.commands.lock().unwrap())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

const KEEP: usize = 4096;

/// Parses one `MONITOR` line: `+<time> [<db> <client>] "CMD" "arg" …`.
fn parse(line: &[u8]) -> Option<Command> {
    let line = line.strip_prefix(b"+")?;
    let open = line.iter().position(|b| *b == b'[')?;
    let close = open + line[open..].iter().position(|b| *b == b']')?;
    let inside = String::from_utf8_lossy(&line[open + 1..close]);
    let client = inside.split_whitespace().nth(1)?.to_string();
    let mut args = Vec::new();
    let mut rest = &line[close + 1..];
    while let Some(start) = rest.iter().position(|b| *b == b'"') {
        let mut arg = Vec::new();
        let mut i = start + 1;
        while i < rest.len() && rest[i] != b'"' {
            let b = if rest[i] == b'\\' && i + 1 < rest.len() {
                i += 1;
                match rest[i] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'a' => 7,
                    b'b' => 8,
                    b'x' if i + 2 < rest.len() => {
                        let hex = std::str::from_utf8(&rest[i + 1..i + 3]).ok()?;
                        i += 2;
                        u8::from_str_radix(hex, 16).ok()?
                    }
                    other => other,
                }
            } else {
                rest[i]
            };
            if arg.len() < KEEP {
                arg.push(b);
            }
            i += 1;
        }
        args.push(arg);
        rest = rest.get(i + 1..)?;
    }
    Some(Command { client, args })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_monitor_lines() {
        let c = parse(
            b"+1700000000.123456 [0 lua] \"HSET\" \"yws:{r}:meta\" \"claim\" \"c1\\x00\\\"x\"\r\n",
        )
        .unwrap();
        assert_eq!(c.client, "lua");
        assert!(c.is("hset"));
        assert_eq!(c.arg(1), "yws:{r}:meta");
        assert_eq!(c.args[3], b"c1\0\"x");
        let c = parse(b"+1.0 [0 127.0.0.1:5000] \"PING\"\r\n").unwrap();
        assert_eq!((c.client.as_str(), c.args.len()), ("127.0.0.1:5000", 1));
    }
}
