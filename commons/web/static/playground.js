// The playground's chat: POST the conversation to the hub, which relays it to the model server,
// and read the OpenAI server-sent events as they arrive (fetch + ReadableStream: no library).
(function () {
  "use strict";
  const root = document.getElementById("playground");
  const form = document.getElementById("chat-form");
  if (!root || !form) return;
  const log = document.getElementById("chat-log");
  const usage = document.getElementById("chat-usage");
  const send = form.querySelector("button[type=submit]");
  let messages = [];

  function bubble(role, text) {
    const item = document.createElement("li");
    item.className = "chat-msg chat-" + role;
    const who = document.createElement("span");
    who.className = "chat-role";
    who.textContent = role === "user" ? "You" : "Model";
    const body = document.createElement("div");
    body.className = "chat-text";
    body.textContent = text;
    item.append(who, body);
    log.append(item);
    return body;
  }

  async function readEvents(response, onData) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (line.startsWith("data: ")) onData(line.slice(6));
        }
      }
    }
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const text = form.message.value.trim();
    if (!text) return;
    messages.push({ role: "user", content: text });
    bubble("user", text);
    form.message.value = "";
    const out = bubble("assistant", "");
    out.parentElement.setAttribute("aria-busy", "true");
    send.disabled = true;
    let reply = "";
    try {
      const response = await fetch(root.dataset.chatUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf },
        body: JSON.stringify({
          messages: messages,
          max_tokens: Number(form.max_tokens.value) || 128,
          temperature: Number(form.temperature.value) || 0,
        }),
      });
      if (!response.ok) {
        const problem = await response.json().catch(() => ({}));
        throw new Error((problem.error && problem.error.message) || response.statusText);
      }
      await readEvents(response, function (data) {
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const choice = chunk.choices && chunk.choices[0];
        if (choice && choice.delta && choice.delta.content) {
          reply += choice.delta.content;
          out.textContent = reply;
        }
        if (chunk.usage) {
          usage.textContent = chunk.usage.prompt_tokens + " prompt tokens, " +
            chunk.usage.completion_tokens + " completion tokens";
        }
      });
      messages.push({ role: "assistant", content: reply });
    } catch (error) {
      out.parentElement.classList.add("chat-error");
      out.textContent = "Error: " + error.message;
      messages.pop();
    } finally {
      out.parentElement.removeAttribute("aria-busy");
      send.disabled = false;
    }
  });

  document.getElementById("chat-reset").addEventListener("click", function () {
    messages = [];
    log.replaceChildren();
    usage.textContent = "";
  });
})();
