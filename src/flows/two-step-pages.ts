// Loaded at the first enrolment page, not at start (resident memory of an idle process).
let qrLoading: Promise<typeof import('qrcode')> | undefined;
const loadQrCode = () => (qrLoading ??= import('qrcode').then((m) => (m as unknown as { default: typeof import('qrcode') }).default ?? m));

/**
 * What the two-step pages of login and settings share: the QR code of an otpauth:// URI, drawn
 * on the server as inline SVG (no script, no third-party image service sees the secret), and the
 * recovery codes as a downloadable text file.
 */
export async function qrCodeSvg(uri: string): Promise<string> {
  const QRCode = await loadQrCode();
  return QRCode.toString(uri, { type: 'svg', margin: 1, width: 192, errorCorrectionLevel: 'M' });
}

/**
 * What views/partials/totp-setup.eta shows of an enrolment: the QR code, the key to type, and the
 * otpauth:// link itself, which opens the authenticator app on the phone the page is read on (a
 * phone cannot scan its own screen).
 */
export async function totpSetupView(enrolment: { secret: string; uri: string }): Promise<{ secret: string; uri: string; qr: string }> {
  return { secret: enrolment.secret, uri: enrolment.uri, qr: await qrCodeSvg(enrolment.uri) };
}

/** A data: URL the "Download" link points at, so the codes never travel again. */
export function recoveryCodesFile(email: string, codes: string[]): string {
  const text = [
    `Lanyard recovery codes for ${email}`,
    '',
    'Each code works once, in place of the code from your authenticator app.',
    'Keep them somewhere safe. Making a new set invalidates these.',
    '',
    ...codes,
    '',
  ].join('\n');
  return `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`;
}
