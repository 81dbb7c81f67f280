// Copy buttons for the command line access page. Without JavaScript the buttons stay hidden and the
// text remains selectable.
document.querySelectorAll('button.copy[data-copy]').forEach((button) => {
  const target = document.getElementById(button.dataset.copy);
  if (!target || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(target.textContent);
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Select the text and copy it';
    }
  });
});

// "Open console" for a console on another site: follow the one-time sign-in link at once. Without
// JavaScript the link stays for the person to click.
const follow = document.querySelector('a[data-follow]');
if (follow) window.location.assign(follow.href);
