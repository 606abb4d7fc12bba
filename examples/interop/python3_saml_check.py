#!/usr/bin/env python3
"""Interop check: python3-saml (OneLogin) as a strict SP, "want both signed", accepts
Passerelle's Responses and rejects tampered ones.

    python3 -m venv /tmp/pysaml && /tmp/pysaml/bin/pip install python3-saml
    cargo build --release
    /tmp/pysaml/bin/python examples/interop/python3_saml_check.py target/release/passerelle

It starts `passerelle serve` on 127.0.0.1:18090 with a temporary configuration registering a
python3-saml SP, signs Alice in, runs an IdP-initiated and an SP-initiated sign-in, and hands
each Response to python3-saml with strict checking.
"""
import base64, html, http.cookiejar, os, re, subprocess, sys, tempfile, time, urllib.parse, urllib.request, zlib

from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/passerelle"
IDP = "http://127.0.0.1:18090"
SP_ENTITY = "https://sp.python3-saml.test/metadata"
ACS = "http://127.0.0.1:18099/acs"

tmp = tempfile.mkdtemp()
config = f"""
[server]
listen = "127.0.0.1:18090"
public_url = "{IDP}"
data_dir = "{tmp}/data"
keys_dir = "{tmp}/keys"
[[directory.users]]
email = "alice@acme.test"
password = "alice-password"
given_name = "Alice"
family_name = "Dupont & <Fils>"
department = "Engineering"
groups = ["corp-managers"]
[[role_mapping]]
group = "corp-managers"
role = "validateur_n1"
module = "figgo"
[[saml.service_providers]]
entity_id = "{SP_ENTITY}"
acs_url = "{ACS}"
require_signed_requests = false
"""
open(f"{tmp}/p.toml", "w").write(config)
server = subprocess.Popen([BIN, "serve", "--config", f"{tmp}/p.toml"], stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(IDP + "/healthz"); break
        except Exception:
            time.sleep(0.1)
    metadata = urllib.request.urlopen(IDP + "/saml/metadata").read().decode()
    cert = re.search(r"<(?:\w+:)?X509Certificate>([^<]+)<", metadata).group(1)
    settings = OneLogin_Saml2_Settings({
        "strict": True,
        "sp": {"entityId": SP_ENTITY, "assertionConsumerService": {"url": ACS},
               "NameIDFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"},
        "idp": {"entityId": IDP + "/saml/metadata", "singleSignOnService": {"url": IDP + "/saml/sso"}, "x509cert": cert},
        "security": {"wantAssertionsSigned": True, "wantMessagesSigned": True, "wantNameId": True,
                     "requestedAuthnContext": False, "rejectDeprecatedAlgorithm": True},
    }, sp_validation_only=True)
    request_data = {"https": "off", "http_host": "127.0.0.1", "server_port": "18099", "script_name": "/acs", "get_data": {}}

    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def fields(page):
        return {html.unescape(k): html.unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', page)}

    def sign_in_then(url):
        page = browser.open(url).read().decode()
        if 'name="password"' in page:
            f = fields(page)
            f.update({"username": "alice@acme.test", "password": "alice-password"})
            page = browser.open(IDP + "/login", urllib.parse.urlencode(f).encode()).read().decode()
        return fields(page)["SAMLResponse"]

    failures = 0
    def check(label, b64, request_id=None, expect=True):
        global failures
        response = OneLogin_Saml2_Response(settings, b64)
        ok = response.is_valid(dict(request_data, post_data={"SAMLResponse": b64}), request_id)
        verdict = "accepted" if ok else f"rejected ({response.get_error()})"
        good = ok == expect
        failures += 0 if good else 1
        print(f"{'PASS' if good else 'FAIL'}  {label}: {verdict}")
        if ok:
            print(f"      NameID {response.get_nameid()}  attributes {response.get_attributes()}")

    b64 = sign_in_then(IDP + "/saml/idp-init?sp=" + urllib.parse.quote(SP_ENTITY))
    check("IdP-initiated Response", b64)

    request_id = "_py" + os.urandom(8).hex()
    authn = (f'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
             f'ID="{request_id}" Version="2.0" IssueInstant="{time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}" '
             f'AssertionConsumerServiceURL="{ACS}"><saml:Issuer>{SP_ENTITY}</saml:Issuer></samlp:AuthnRequest>')
    deflated = zlib.compress(authn.encode())[2:-4]
    url = IDP + "/saml/sso?" + urllib.parse.urlencode({"SAMLRequest": base64.b64encode(deflated).decode()})
    b64 = sign_in_then(url)
    check("SP-initiated Response", b64, request_id)

    xml = base64.b64decode(b64).decode()
    tampered = xml.replace("validateur_n1", "administrateur_rh")
    assert tampered != xml
    check("tampered attribute", base64.b64encode(tampered.encode()).decode(), request_id, expect=False)
    sys.exit(1 if failures else 0)
finally:
    server.terminate()
