import { Eta } from 'eta';

/**
 * Server-rendered pages (views/, Eta with auto-escaping). Templates are compiled once and cached
 * unless `cache` is false (development edits show on reload).
 */
export interface Views {
  render(name: string, data: Record<string, unknown>): string;
  /** Renders a short template given as text (email subjects). */
  renderString(template: string, data: Record<string, unknown>): string;
}

export function createViews(dir: string, options: { cache: boolean; productName: string }): Views {
  const eta = new Eta({ views: dir, cache: options.cache, autoEscape: true, autoTrim: false });
  return {
    render: (name, data) => eta.render(`./${name}`, { productName: options.productName, ...data }),
    renderString: (template, data) => eta.renderString(template, { productName: options.productName, ...data }),
  };
}
