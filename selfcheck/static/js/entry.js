/* Keyboard-first typing of a paper form (progressive enhancement: without this script the
   form works with Tab, arrows and Space).

   In a question with choices, typing an option's number chooses it: a single choice then moves
   on to the next question; a multiple choice toggles the option and stays, Enter moves on.
   0 is "Sans réponse". With 10 options or more, a number may have two digits: the first waits
   a moment for the second. Enter in a number field moves on too. Questions that do not apply
   (by the answers typed so far) are disabled and skipped. After the last question, focus goes
   to the finish button. */
(function () {
  "use strict";

  var form = document.querySelector("form[data-entry]");
  if (!form) {
    return;
  }
  var WAIT_MS = 700;
  var questions = Array.prototype.slice.call(form.querySelectorAll("[data-entry-q]"));
  var groups = Array.prototype.slice.call(form.querySelectorAll("[data-entry-var]"));
  var live = document.getElementById("entry-live");
  var buffer = "";
  var bufferGroup = null;
  var timer = null;

  function say(text) {
    if (live) {
      live.textContent = "";
      window.setTimeout(function () { live.textContent = text; }, 50);
    }
  }

  function applies(question) {
    var item = question.getAttribute("data-show-if");
    if (!item) {
      return true;
    }
    var wanted = (question.getAttribute("data-show-values") || "").split(" ");
    var boxes = form.querySelectorAll("input[name='" + item + "']");
    for (var i = 0; i < boxes.length; i++) {
      if (boxes[i].checked && !boxes[i].disabled && wanted.indexOf(boxes[i].value) >= 0) {
        return true;
      }
    }
    return false;
  }

  function refresh() {
    // Conditions refer to earlier questions: one pass in page order is enough.
    questions.forEach(function (question) {
      var ok = applies(question);
      question.classList.toggle("entry-q--na", !ok);
      Array.prototype.forEach.call(question.querySelectorAll("input, textarea"), function (el) {
        el.disabled = !ok;
      });
    });
  }

  function isSkipped(group) {
    return group.closest("[data-entry-q]").classList.contains("entry-q--na");
  }

  function landing(group) {
    var chosen = group.querySelector("input[type=radio]:checked");
    return chosen || group.querySelector("input, textarea");
  }

  function moveOn(group) {
    var index = groups.indexOf(group);
    for (var i = index + 1; i < groups.length; i++) {
      if (!isSkipped(groups[i])) {
        landing(groups[i]).focus();
        return;
      }
    }
    var finish = form.querySelector("[data-entry-finish]");
    if (finish) {
      finish.focus();
    }
  }

  function changed(box) {
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function choose(group, key) {
    var box = group.querySelector("input[data-key='" + key + "']");
    if (!box || box.disabled) {
      say((form.getAttribute("data-msg-no-key") || "").replace("{key}", key));
      return;
    }
    if (box.type === "radio") {
      box.checked = true;
      changed(box);
      moveOn(group);
      return;
    }
    box.checked = !box.checked;
    if (box.checked) {
      // "None of these" and "Sans réponse" stand alone; any other option clears them.
      var exclusive = box.hasAttribute("data-exclusive");
      Array.prototype.forEach.call(group.querySelectorAll("input[type=checkbox]"), function (other) {
        if (other !== box && (exclusive || other.hasAttribute("data-exclusive"))) {
          other.checked = false;
        }
      });
    }
    box.focus();
    changed(box);
  }

  function commit() {
    window.clearTimeout(timer);
    var group = bufferGroup;
    var key = String(parseInt(buffer, 10));
    buffer = "";
    bufferGroup = null;
    if (group) {
      choose(group, key);
    }
  }

  function typeDigit(group, digit) {
    if (bufferGroup && bufferGroup !== group) {
      commit();
    }
    bufferGroup = group;
    buffer += digit;
    window.clearTimeout(timer);
    var most = parseInt(group.getAttribute("data-max"), 10) || 0;
    var number = parseInt(buffer, 10);
    if (buffer === "0" || number * 10 > most) {
      commit();
    } else {
      timer = window.setTimeout(commit, WAIT_MS);
    }
  }

  form.addEventListener("keydown", function (event) {
    var target = event.target;
    var group = target.closest ? target.closest("[data-entry-var]") : null;
    if (!group || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    var kind = group.getAttribute("data-kind");
    var choices = kind === "radio" || kind === "checkbox";
    if (choices && /^[0-9]$/.test(event.key)) {
      event.preventDefault();
      typeDigit(group, event.key);
    } else if (event.key === "Enter" && target.tagName !== "TEXTAREA") {
      event.preventDefault();
      if (buffer) {
        commit();
        if (kind === "checkbox") {
          moveOn(group);
        }
      } else {
        moveOn(group);
      }
    }
  });

  form.addEventListener("change", refresh);
  refresh();
})();
