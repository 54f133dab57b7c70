// Bounds that keep the webhook answering the apiserver while any in-cluster client floods it
// (docs/security.md, T6). With failurePolicy Fail an unanswered review refuses the pod, so a flood
// must never starve the small, fast requests the apiserver sends. The rules:
//  - connections are capped; a new connection at the cap evicts the oldest one that is not being
//    answered: idle keep-alives, half-sent headers, and bodies still arriving (the apiserver sends
//    a review in one go, within milliseconds, so the oldest such connection is never its own);
//  - a request has `requestTimeoutMs` in all (the apiserver gave up after timeoutSeconds anyway);
//  - bodies over SMALL_BODY_BYTES (a pod review is a few KiB; an UPDATE of a huge pod can reach
//    MiBs) share a few slots, so big bodies cannot fill memory;
//  - decisions in progress are capped (they may read the API: a cache miss for a class or node).
import type { Server as HttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket as Socket } from 'node:tls';

export interface Limits {
  /** Open connections at most; default 256. */
  maxConnections: number;
  /** Decisions in progress at once; default 64. */
  maxInFlight: number;
  /** Requests with a body over SMALL_BODY_BYTES at once; default 4. */
  maxLargeBodies: number;
  /** Largest body accepted; default 4 MiB (an UPDATE review carries two pods of up to 1.5 MiB). */
  maxBodyBytes: number;
  /** Time to receive the request headers; default 5 s. */
  headersTimeoutMs: number;
  /** Time to receive the whole request; default 10 s (the webhook's timeoutSeconds is at most 30, ours 5). */
  requestTimeoutMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxConnections: 256,
  maxInFlight: 64,
  maxLargeBodies: 4,
  maxBodyBytes: 4 * 1024 * 1024,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
};

export const SMALL_BODY_BYTES = 256 * 1024;

export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

interface Tracked {
  socket: Socket;
  since: number;
  /** idle: no request, or headers still arriving; reading: the body is arriving; answering: protected. */
  phase: 'idle' | 'reading' | 'answering';
}

/** Marks a request's progress on its connection (see guardConnections). */
export interface RequestTracker {
  /** The body has arrived: from now on the connection is not evicted. */
  answering(): void;
}

/**
 * Caps connections on `server`, evicting the oldest connection that is not answering a request when
 * a new one arrives at the cap. Returns the function that tracks each request on its connection.
 */
export function guardConnections(
  server: HttpsServer,
  limits: Limits,
): (req: IncomingMessage, res: ServerResponse) => RequestTracker {
  const open = new Map<Socket, Tracked>();
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  // Idle keep-alive connections are welcome (the apiserver reuses them) but evicted first at the cap.
  server.keepAliveTimeout = 90_000;
  // Handshakes are bounded apart (handshakeTimeout, and this hard cap on TCP connections); the cap
  // with eviction below applies to connections that completed TLS, the ones HTTP requests use.
  server.maxConnections = limits.maxConnections * 2;
  server.on('secureConnection', (socket: Socket) => {
    if (open.size >= limits.maxConnections) {
      let victim: Tracked | undefined;
      for (const t of open.values()) if (t.phase !== 'answering' && (!victim || t.since < victim.since)) victim = t;
      if (!victim) {
        // Every connection is being answered: this one has to come back (the apiserver retries).
        socket.destroy();
        return;
      }
      open.delete(victim.socket);
      victim.socket.destroy();
    }
    open.set(socket, { socket, since: Date.now(), phase: 'idle' });
    socket.once('close', () => open.delete(socket));
  });
  return (req, res) => {
    const t = open.get(req.socket as Socket);
    if (!t) return { answering: () => {} };
    t.phase = 'reading';
    t.since = Date.now();
    res.once('close', () => {
      t.phase = 'idle';
      t.since = Date.now();
    });
    return {
      answering: () => {
        t.phase = 'answering';
      },
    };
  };
}

/** Large-body slots and decisions in flight; each `release` is called exactly once. */
export class Admittance {
  private inFlight = 0;
  private large = 0;
  private readonly limits: Limits;
  constructor(limits: Limits) {
    this.limits = limits;
  }

  /** Before reading a body: HttpError(413) when it is too big, (503) when large slots are taken. */
  body(declaredBytes: number): { release(): void; growTo(bytes: number): void } {
    if (declaredBytes > this.limits.maxBodyBytes)
      throw new HttpError(413, `body larger than ${this.limits.maxBodyBytes} bytes`);
    let large = false;
    const takeLarge = () => {
      if (large) return;
      if (this.large >= this.limits.maxLargeBodies)
        throw new HttpError(503, `too many large requests in flight (${this.limits.maxLargeBodies}); retry`);
      this.large++;
      large = true;
    };
    if (declaredBytes > SMALL_BODY_BYTES) takeLarge();
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        if (large) this.large--;
      },
      // A chunked body announces no length: it takes a large slot once it grows past the small size.
      growTo: (bytes) => {
        if (bytes > SMALL_BODY_BYTES) takeLarge();
      },
    };
  }

  /** Before deciding: HttpError(503) when too many decisions are in progress. */
  decide(): () => void {
    if (this.inFlight >= this.limits.maxInFlight)
      throw new HttpError(503, `too many requests in flight (${this.limits.maxInFlight}); retry`);
    this.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
    };
  }
}

/** Reads the body up to `max` bytes, calling `grow` with the size so far; rejects with HttpError. */
export function readBody(req: IncomingMessage, max: number, grow: (bytes: number) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    // Built only when it fails: 'close' comes after every request's 'end', and an Error captures its
    // stack as it is made (a profiled 1,000-pod burst spent 93 ms making ones nobody read).
    const fail = (e: () => HttpError) => {
      if (done) return;
      done = true;
      req.pause();
      reject(e());
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) return fail(() => new HttpError(413, `body larger than ${max} bytes`));
      try {
        grow(size);
      } catch (e) {
        return fail(() => e as HttpError);
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) {
        done = true;
        resolve(Buffer.concat(chunks));
      }
    });
    req.on('error', (e) => fail(() => new HttpError(400, `reading the body failed: ${e.message}`)));
    req.on('close', () =>
      fail(() => new HttpError(400, 'the client closed the connection before sending the whole body')),
    );
  });
}
