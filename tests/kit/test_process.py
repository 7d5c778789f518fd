import resource

from imail.kit.process import TLS_READ_BUFFER, raise_open_files_limit, shrink_tls_read_buffers


def test_the_soft_open_files_limit_is_lifted_to_the_hard_one():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if hard != resource.RLIM_INFINITY and hard > 256:
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        assert raise_open_files_limit() == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        lifted = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert lifted == hard or hard == resource.RLIM_INFINITY
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_tls_connections_read_into_a_small_buffer():
    from asyncio import sslproto

    default = sslproto.SSLProtocol.max_size
    try:
        shrink_tls_read_buffers()
        assert sslproto.SSLProtocol.max_size == TLS_READ_BUFFER < default
        shrink_tls_read_buffers(1 << 30)  # never grows it
        assert sslproto.SSLProtocol.max_size == TLS_READ_BUFFER
    finally:
        sslproto.SSLProtocol.max_size = default
