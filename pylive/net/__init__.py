"""Network images: URLs, checksums, knowing when the network is usable, and downloads.

For the integration (root=live:<url>, live.updates=), the API kept stable:

- url.parse_url(text) -> NetUrl (scheme http|https|ftp|tftp|nfs, host, port, path, file_path,
  file_name); BadUrl (a NetError, so a LiveError: str() is the one line) when it cannot be fetched.
- checksum.parse_checksum(text, option) -> ChecksumSpec: `sha256:<hex>`, `sha512:<hex>`, `md5:<hex>`,
  or the URL of a sha256sum/BSD-style checksum file (the line for the image's file name is used).
- ready.wait_ready(server, timeout_s, interface=None) -> Ready: blocks on rtnetlink (pyroute2's
  message classes) until a link is up with carrier, has an address, and the kernel has a route to the
  server (a name is resolved first); NotReady names the interface and what is missing.
- fetch.fetch(urls, dest, *, checksum=None, verify_tls=True, ca_file=None, room_bytes=None,
  progress=None, retry=RetryPolicy(), timeout_s=30) -> Fetched(url, size, seconds, digest).
  urls: mirrors in order (str or NetUrl); room_bytes: an int or a callable giving the bytes the image
  may take (checked against Content-Length / TFTP tsize before the first byte: TooLarge);
  progress(what, total) -> a context manager giving an object with update(done) (RealSystem._watch);
  the image goes to dest + ".part", renamed to dest once whole and verified.
- errors: NetError (.retry), BadUrl, FetchFailed, TooLarge, ChecksumMismatch, AllMirrorsFailed, NotReady.

nfs:// is parsed here but mounted by the integration, not fetched.
"""
