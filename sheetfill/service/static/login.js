"use strict";
// The form posts normally (the server sets a session cookie for pages, logs and data docs);
// the token is also kept in sessionStorage for the API's Authorization header.
document.getElementById("login").addEventListener("submit", () => {
  SF.setToken(document.getElementById("token").value);
});
