import gzip
import json
import pathlib

import pytest

# Small but real-looking C functions, used where tests need "real" code without the Devign data.
SAMPLE_FUNCTIONS = [
    """static int parse_header(const uint8_t *buf, int buf_size, Header *h)
{
    int i, len = 0;
    if (buf_size < 8)
        return AVERROR_INVALIDDATA;
    for (i = 0; i < 4; i++) {
        h->tag[i] = buf[i];
        len += buf[i] << (8 * i);
    }
    while (len > 0 && buf[len - 1] == 0)
        len--;
    switch (h->tag[0]) {
    case 'A':
        h->kind = KIND_A;
        break;
    default:
        h->kind = KIND_OTHER;
    }
    memcpy(h->payload, buf + 8, len);
    return len;
}
""",
    """void handle_request(int sock)
{
    char buf[256], query[512];
    ssize_t n = recv(sock, buf, sizeof(buf) - 1, 0);
    if (n <= 0) {
        goto out;
    }
    buf[n] = '\\0';
    sprintf(query, "SELECT * FROM users WHERE name = '%s'", buf);
    mysql_query(conn, query);
    do {
        n--;
    } while (n > 0 && buf[n] != ' ');
out:
    close(sock);
}
""",
    """int main(int argc, char **argv)
{
    char cmd[128];
    const char *home = getenv("HOME");
    if (argc < 2) {
        fprintf(stderr, "usage: %s name\\n", argv[0]);
        return 1;
    }
    snprintf(cmd, sizeof cmd, "ls %s/%s", home, argv[1]);
    system(cmd);
    printf(argv[1]);
    return 0;
}
""",
]


@pytest.fixture(scope="session")
def real_functions() -> list[str]:
    """The hand-written samples plus, when present, the first 300 Devign functions."""
    codes = list(SAMPLE_FUNCTIONS)
    path = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "devign" / "valid.jsonl.gz"
    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i >= 300:
                    break
                codes.append(json.loads(line)["func"])
    return codes
