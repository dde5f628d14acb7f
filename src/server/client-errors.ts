/**
 * Requests Node's HTTP parser refuses before Express sees them — headers over 16 KB, a
 * malformed request line — are answered like every other refusal, as JSON with a code,
 * instead of Node's bare status line.
 */
import type { Server } from "node:http";
import type { Duplex } from "node:stream";

export function answerClientErrors(server: Server): void {
  server.on("clientError", (err: Error & { code?: string }, socket: Duplex) => {
    if (err.code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === "HPE_HEADER_OVERFLOW";
    const body = JSON.stringify({
      success: false,
      code: tooLarge ? "headers_too_large" : "malformed_request",
      error: tooLarge ? "The URL and headers are larger than the server accepts (16 KB)" : `The request cannot be parsed: ${err.message}`,
    });
    socket.end(
      `HTTP/1.1 ${tooLarge ? "431 Request Header Fields Too Large" : "400 Bad Request"}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
