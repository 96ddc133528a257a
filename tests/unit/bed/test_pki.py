from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rocketmq_lab.bed.pki import CertificateAuthority


def test_serving_cert_is_signed_by_the_ca_and_names_loopback() -> None:
    ca = CertificateAuthority("test-ca")
    serving = x509.load_pem_x509_certificate(ca.issue("api", server_ips=("127.0.0.1",),
                                                      server_names=("localhost",)).cert_pem)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    serving.verify_directly_issued_by(ca_cert)
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    usage = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_client_cert_carries_user_and_group_for_kubernetes() -> None:
    ca = CertificateAuthority("test-ca")
    pair = ca.issue("admin", organization="system:masters")
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
