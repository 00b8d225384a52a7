"""The server keeps a connection open between requests, as AWS's endpoints do, and closes it where
the next request could not be told from the last one's body."""

from __future__ import annotations

import http.client
import socket
from urllib.parse import urlsplit

from conftest import client_as

LIST_STACKS = "Action=ListStacks&Version=2010-05-15"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def connection(url: str) -> http.client.HTTPConnection:
    address = urlsplit(url)
    return http.client.HTTPConnection(address.hostname, address.port, timeout=30)


def local_port(conn: http.client.HTTPConnection) -> int:
    return conn.sock.getsockname()[1]


def test_requests_share_one_connection(local_aws):
    conn = connection(local_aws.url)
    conn.request("GET", "/moto-api/")
    first = conn.getresponse()
    first.read()
    port = local_port(conn)
    assert first.getheader("Connection") is None
    assert not first.will_close

    # A form POST (read by the emulator before moto), then a GET: the same socket each time.
    conn.request("POST", "/", body=LIST_STACKS, headers=FORM)
    second = conn.getresponse()
    assert second.status in (200, 403), second.read()
    second.read()
    conn.request("GET", "/moto-api/")
    third = conn.getresponse()
    assert third.status == 200
    third.read()
    assert local_port(conn) == port
    conn.close()


def test_a_body_the_application_leaves_unread_is_drained(local_aws):
    """moto's own API ignores a GET's body: the next request line must still be read whole."""
    conn = connection(local_aws.url)
    conn.request("GET", "/moto-api/", body=b"x" * 200_000)
    first = conn.getresponse()
    assert first.status == 200
    first.read()
    port = local_port(conn)
    conn.request("GET", "/moto-api/")
    second = conn.getresponse()
    assert second.status == 200
    second.read()
    assert local_port(conn) == port
    conn.close()


def raw_exchange(url: str, request: bytes) -> bytes:
    """Sends `request` as it is and reads until the server closes the connection."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_a_chunked_body_or_http_1_0_closes_the_connection(local_aws):
    host = urlsplit(local_aws.url).netloc
    chunked = (
        f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n{len(LIST_STACKS):x}\r\n{LIST_STACKS}\r\n0\r\n\r\n"
    ).encode()
    # recv returns b"" only when the server closed: the exchange would time out otherwise.
    answer = raw_exchange(local_aws.url, chunked)
    assert answer.startswith(b"HTTP/1.1 ")
    assert b"\r\nConnection: close\r\n" in answer

    answer = raw_exchange(local_aws.url, f"GET /moto-api/ HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"\r\nConnection: close\r\n" in answer


def test_a_client_asking_to_close_is_answered_and_closed(local_aws):
    host = urlsplit(local_aws.url).netloc
    request = f"GET /moto-api/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    answer = raw_exchange(local_aws.url, request)
    assert answer.startswith(b"HTTP/1.1 200")


def test_two_requests_sent_at_once_get_two_answers(local_aws):
    """Pipelined: the second request line arrives with the first; neither is lost to a drain."""
    host = urlsplit(local_aws.url).netloc
    one = f"GET /moto-api/ HTTP/1.1\r\nHost: {host}\r\n\r\n"
    last = f"GET /moto-api/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(local_aws.url, (one + last).encode())
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2


def test_signed_sdk_calls_over_a_kept_connection(local_aws):
    """botocore reuses its pooled connection: signed calls with bodies keep working back to back."""
    sts = client_as(local_aws.url, "sts", "us-east-1")
    s3 = client_as(local_aws.url, "s3", "us-east-1", s3={"addressing_style": "path"})
    s3.create_bucket(Bucket="keep-alive-bucket")
    for number in range(5):
        s3.put_object(Bucket="keep-alive-bucket", Key=f"k{number}", Body=b"y" * (number * 1000))
        assert sts.get_caller_identity()["Account"]
    body = s3.get_object(Bucket="keep-alive-bucket", Key="k4")["Body"].read()
    assert body == b"y" * 4000


def test_responses_are_sent_without_waiting_for_the_clients_acknowledgement():
    """A response is written in two parts (headers, then body); with Nagle's algorithm the body
    of every response on a kept connection would wait for the client's delayed ACK (up to 40 ms
    on Linux). The handler turns it off on each connection it serves."""
    from localaws.keep_alive import KeepAliveRequestHandler

    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=10)
        served, _ = listener.accept()
        with client, served:
            assert not served.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            handler = object.__new__(KeepAliveRequestHandler)
            handler.request = handler.connection = served
            handler.setup()  # what socketserver runs first for each connection
            assert served.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            handler.rfile.close()
            handler.wfile.close()
