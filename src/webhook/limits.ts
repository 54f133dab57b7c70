// Bounds that keep the webhook answering the apiserver while any in-cluster client floods it
// (docs/security.md, T6). With failurePolicy Fail an unanswered review refuses the pod, so a flood
// must never starve the small, fast requests the apiserver sends. Three rules:
//  - connections are capped, and a new connection at the cap evicts the oldest one that has no
//    request in progress (idle keep-alives, half-sent headers), never a request being answered;
//  - a request has `requestTimeoutMs` in all (the apiserver gave up after timeoutSeconds anyway);
//  - bodies over SMALL_BODY_BYTES (a pod review is a few KiB; an UPDATE of a huge pod can reach
//    MiBs) share a few slots, so big bodies cannot fill memory or crowd out ordinary reviews.
import type { Server as HttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface Limits {
  /** Open connections at most; default 512. */
  maxConnections: number;
  /** Requests being read or decided at once; default 256. */
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
  maxConnections: 512,
  maxInFlight: 256,
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
  busy: number;
}

/**
 * Caps connections on `server`, evicting the oldest connection without a request in progress when
 * a new one arrives at the cap. Returns a function that marks a request busy until it is answered.
 */
export function guardConnections(
  server: HttpsServer,
  limits: Limits,
): (req: IncomingMessage, res: ServerResponse) => void {
  const open = new Map<Socket, Tracked>();
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  // Node checks the two timeouts above on this interval; the default (30 s) would let them slip.
  (server as unknown as { connectionsCheckingInterval?: number }).connectionsCheckingInterval = 1_000;
  // Idle keep-alive connections are welcome (the apiserver reuses them) but evicted first at the cap.
  server.keepAliveTimeout = 90_000;
  server.on('connection', (socket: Socket) => {
    if (open.size >= limits.maxConnections) {
      let victim: Tracked | undefined;
      for (const t of open.values()) if (t.busy === 0 && (!victim || t.since < victim.since)) victim = t;
      if (!victim) {
        // Every connection is answering a request: this one waits its turn by not being accepted.
        socket.destroy();
        return;
      }
      open.delete(victim.socket);
      victim.socket.destroy();
    }
    open.set(socket, { socket, since: Date.now(), busy: 0 });
    socket.once('close', () => open.delete(socket));
  });
  return (req, res) => {
    const t = open.get(req.socket);
    if (!t) return;
    t.busy++;
    res.once('close', () => {
      t.busy--;
      t.since = Date.now();
    });
  };
}

/** Counts requests in flight and large bodies against the limits; `release` exactly once per `admit`. */
export class Admittance {
  private inFlight = 0;
  private large = 0;
  private readonly limits: Limits;
  constructor(limits: Limits) {
    this.limits = limits;
  }

  /** Throws HttpError(503) when over a limit; the caller answers it without reading the body. */
  admit(declaredBytes: number): { release(): void; growTo(bytes: number): void } {
    if (declaredBytes > this.limits.maxBodyBytes)
      throw new HttpError(413, `body larger than ${this.limits.maxBodyBytes} bytes`);
    if (this.inFlight >= this.limits.maxInFlight)
      throw new HttpError(503, `too many requests in flight (${this.limits.maxInFlight}); retry`);
    let large = false;
    const takeLarge = () => {
      if (large) return;
      if (this.large >= this.limits.maxLargeBodies)
        throw new HttpError(503, `too many large requests in flight (${this.limits.maxLargeBodies}); retry`);
      this.large++;
      large = true;
    };
    if (declaredBytes > SMALL_BODY_BYTES) takeLarge();
    this.inFlight++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.inFlight--;
        if (large) this.large--;
      },
      // A chunked body announces no length: it takes a large slot once it grows past the small size.
      growTo: (bytes) => {
        if (bytes > SMALL_BODY_BYTES) takeLarge();
      },
    };
  }
}

/** Reads the body up to `max` bytes, calling `grow` with the size so far; rejects with HttpError. */
export function readBody(req: IncomingMessage, max: number, grow: (bytes: number) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const fail = (e: HttpError) => {
      if (done) return;
      done = true;
      req.pause();
      reject(e);
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) return fail(new HttpError(413, `body larger than ${max} bytes`));
      try {
        grow(size);
      } catch (e) {
        return fail(e as HttpError);
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) {
        done = true;
        resolve(Buffer.concat(chunks));
      }
    });
    req.on('error', (e) => fail(new HttpError(400, `reading the body failed: ${e.message}`)));
    req.on('close', () => fail(new HttpError(400, 'the client closed the connection before sending the whole body')));
  });
}
