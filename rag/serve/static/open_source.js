element.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-cite]');
  if (button && element.contains(button)) trigger('click', {cite: Number(button.dataset.cite)});
});
