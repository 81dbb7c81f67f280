// Security keys (WebAuthn) on the portal's enrolment and challenge pages. The form
// (form#webauthn-form, data-webauthn="create" or "get") names the begin and finish URLs: begin answers
// the options JSON (binary fields base64url), the browser asks the key, and finish receives the
// key's answer (binary fields base64url) as the form field `credential`, next to the form's own
// fields (csrf, label, return_to). Without JavaScript or WebAuthn the form stays hidden and the page's
// notice explains why.
(() => {
  const form = document.getElementById('webauthn-form');
  if (!form) return;
  const status = document.getElementById('webauthn-status');
  const unsupported = document.getElementById('webauthn-unsupported');
  if (!window.PublicKeyCredential || !navigator.credentials) {
    if (unsupported) {
      unsupported.textContent = 'This browser cannot use security keys (WebAuthn is not available). '
        + 'Use a current browser, or another second factor.';
    }
    return;
  }
  if (unsupported) unsupported.hidden = true;
  form.hidden = false;
  const mode = form.dataset.webauthn;

  const say = (message, failed) => {
    status.textContent = message;
    status.classList.toggle('error', Boolean(failed));
  };

  const fromB64 = (s) => {
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  };
  const toB64 = (buf) => {
    let bin = '';
    new Uint8Array(buf).forEach((b) => { bin += String.fromCharCode(b); });
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };

  // The server's options with their binary members as ArrayBuffers.
  const decodeOptions = (publicKey) => {
    const o = { ...publicKey, challenge: fromB64(publicKey.challenge) };
    if (o.user) o.user = { ...o.user, id: fromB64(o.user.id) };
    for (const list of ['excludeCredentials', 'allowCredentials']) {
      if (Array.isArray(o[list])) o[list] = o[list].map((c) => ({ ...c, id: fromB64(c.id) }));
    }
    return o;
  };

  // The key's answer as JSON with its binary members base64url.
  const encodeCredential = (cred) => {
    const r = cred.response;
    const response = { clientDataJSON: toB64(r.clientDataJSON) };
    if (mode === 'create') {
      response.attestationObject = toB64(r.attestationObject);
      if (typeof r.getTransports === 'function') response.transports = r.getTransports();
    } else {
      response.authenticatorData = toB64(r.authenticatorData);
      response.signature = toB64(r.signature);
      response.userHandle = r.userHandle ? toB64(r.userHandle) : null;
    }
    return {
      id: cred.id,
      rawId: toB64(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      response,
      clientExtensionResults: cred.getClientExtensionResults(),
    };
  };

  const post = async (url, fields) => {
    const resp = await fetch(url, {
      method: 'POST',
      body: fields,
      credentials: 'same-origin',
      headers: { accept: 'application/json' },
    });
    let body = {};
    try {
      body = await resp.json();
    } catch {
      body = { message: `rolegate answered HTTP ${resp.status}. Reload the page and try again.` };
    }
    return { ok: resp.ok, body };
  };

  // What the browser's refusal means for the person.
  const browserError = (err) => {
    switch (err && err.name) {
      case 'NotAllowedError':
        return 'The security key did not answer: the request was cancelled, timed out, or no registered key was used. Try again.';
      case 'InvalidStateError':
        return 'This security key is already registered to your account. Use another key.';
      case 'SecurityError':
        return 'The browser refused to use a security key on this address.';
      case 'NotSupportedError':
        return `This security key or browser does not support what rolegate asks for (${err.message}).`;
      default:
        return `The security key could not be used (${err && err.name ? err.name : 'unknown error'}).`;
    }
  };

  const failed = (body) => {
    say(body.message || 'The request was refused. Reload the page and try again.', true);
    if (body.redirect) {
      const link = document.createElement('a');
      link.href = body.redirect;
      link.textContent = ' Continue';
      status.append(link);
    }
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const fields = new URLSearchParams(new FormData(form));
      say('Asking rolegate to start…');
      const begin = await post(form.dataset.begin, fields);
      if (!begin.ok) {
        failed(begin.body);
        return;
      }
      const publicKey = decodeOptions(begin.body.publicKey);
      say('Insert or touch your security key now.');
      let cred;
      try {
        cred = mode === 'create'
          ? await navigator.credentials.create({ publicKey })
          : await navigator.credentials.get({ publicKey });
      } catch (err) {
        say(browserError(err), true);
        return;
      }
      fields.set('credential', JSON.stringify(encodeCredential(cred)));
      say('Checking the key’s answer…');
      const finish = await post(form.dataset.finish, fields);
      if (!finish.ok) {
        failed(finish.body);
        return;
      }
      say('Done.');
      window.location.assign(finish.body.redirect);
    } catch (err) {
      say(`Something went wrong: ${err && err.message ? err.message : err}. Reload the page and try again.`, true);
    } finally {
      button.disabled = false;
    }
  });
})();
